/*
 * The overhead benchmark's trivial worker: the least a jobvisor worker can do.
 *
 * Reads JOBVISOR_SOCKET (a Unix socket path, or tcp://127.0.0.1:PORT), JOBVISOR_JOB_ID
 * and JOBVISOR_TOKEN; connects; sends a hand-encoded msgpack hello
 * {"type":"hello","v":1,"job_id":ID,"token":TOKEN,"pid":PID}; reads the welcome frame;
 * sends {"type":"started"} and {"type":"completed"} (no result); waits for the ack;
 * exits 0. Any refusal or surprise exits 1. With the argument --bare it exits 0 at
 * once: the baseline is the same binary through the same spawn path.
 *
 * Frames are a 4-byte big-endian length and one msgpack map (docs/protocol.md).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_FRAME (1u << 20)

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* msgpack str (fixstr, str8 or str16: job ids and tokens are short) */
static uint8_t *put_str(uint8_t *p, const char *s) {
    size_t n = strlen(s);
    if (n < 32) {
        *p++ = (uint8_t)(0xa0 | n);
    } else if (n < 256) {
        *p++ = 0xd9;
        *p++ = (uint8_t)n;
    } else {
        *p++ = 0xda;
        *p++ = (uint8_t)(n >> 8);
        *p++ = (uint8_t)n;
    }
    memcpy(p, s, n);
    return p + n;
}

/* msgpack unsigned integer in its smallest form */
static uint8_t *put_uint(uint8_t *p, uint32_t v) {
    if (v < 128) {
        *p++ = (uint8_t)v;
    } else if (v < 256) {
        *p++ = 0xcc;
        *p++ = (uint8_t)v;
    } else if (v < 65536) {
        *p++ = 0xcd;
        *p++ = (uint8_t)(v >> 8);
        *p++ = (uint8_t)v;
    } else {
        *p++ = 0xce;
        *p++ = (uint8_t)(v >> 24);
        *p++ = (uint8_t)(v >> 16);
        *p++ = (uint8_t)(v >> 8);
        *p++ = (uint8_t)v;
    }
    return p;
}

/* Prefix the body that starts at frame + 4 and ends at end with its length. */
static size_t finish_frame(uint8_t *frame, const uint8_t *end) {
    uint32_t n = (uint32_t)(end - frame - 4);
    frame[0] = (uint8_t)(n >> 24);
    frame[1] = (uint8_t)(n >> 16);
    frame[2] = (uint8_t)(n >> 8);
    frame[3] = (uint8_t)n;
    return (size_t)(end - frame);
}

/* Read one frame; return 1 if its body holds the msgpack string `want`, 0 if not, -1 on error. */
static int read_frame_with(int fd, const char *want, uint8_t *body) {
    uint8_t head[4];
    if (read_all(fd, head, 4) < 0) return -1;
    uint32_t n = ((uint32_t)head[0] << 24) | ((uint32_t)head[1] << 16) |
                 ((uint32_t)head[2] << 8) | head[3];
    if (n > MAX_FRAME || read_all(fd, body, n) < 0) return -1;
    uint8_t needle[64];
    size_t k = (size_t)(put_str(needle, want) - needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(body + i, needle, k) == 0) return 1;
    return 0;
}

static int connect_to(const char *address) {
    if (strncmp(address, "tcp://", 6) == 0) {
        const char *colon = strrchr(address + 6, ':');
        if (colon == NULL) return -1;
        char host[64];
        size_t len = (size_t)(colon - (address + 6));
        if (len >= sizeof host) return -1;
        memcpy(host, address + 6, len);
        host[len] = 0;
        struct sockaddr_in sin = {0};
        sin.sin_family = AF_INET;
        sin.sin_port = htons((uint16_t)atoi(colon + 1));
        if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) return -1;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) return -1;
        return fd;
    }
    struct sockaddr_un sun = {0};
    sun.sun_family = AF_UNIX;
    if (strlen(address) >= sizeof sun.sun_path) return -1;
    strcpy(sun.sun_path, address);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) return -1;
    return fd;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--bare") == 0) return 0;
    const char *address = getenv("JOBVISOR_SOCKET");
    const char *job_id = getenv("JOBVISOR_JOB_ID");
    const char *token = getenv("JOBVISOR_TOKEN");
    if (!address || !job_id || !token || strlen(job_id) > 200 || strlen(token) > 200) {
        fprintf(stderr, "trivial_worker: JOBVISOR_SOCKET/JOB_ID/TOKEN missing or too long\n");
        return 1;
    }
    int fd = connect_to(address);
    if (fd < 0) {
        perror("trivial_worker: connect");
        return 1;
    }

    static uint8_t buf[MAX_FRAME];
    uint8_t *p = buf + 4;
    *p++ = 0x85; /* map of 5 */
    p = put_str(p, "type");
    p = put_str(p, "hello");
    p = put_str(p, "v");
    p = put_uint(p, 1);
    p = put_str(p, "job_id");
    p = put_str(p, job_id);
    p = put_str(p, "token");
    p = put_str(p, token);
    p = put_str(p, "pid");
    p = put_uint(p, (uint32_t)getpid());
    if (write_all(fd, buf, finish_frame(buf, p)) < 0) return 1;

    if (read_frame_with(fd, "welcome", buf) != 1) {
        fprintf(stderr, "trivial_worker: no welcome\n");
        return 1;
    }

    uint8_t out[64];
    p = out + 4;
    *p++ = 0x81;
    p = put_str(p, "type");
    p = put_str(p, "started");
    size_t first = finish_frame(out, p);
    uint8_t *second = out + first;
    p = second + 4;
    *p++ = 0x81;
    p = put_str(p, "type");
    p = put_str(p, "completed");
    size_t total = first + finish_frame(second, p);
    if (write_all(fd, out, total) < 0) return 1;

    for (;;) { /* a cancel may come first; the ack is what we wait for */
        int found = read_frame_with(fd, "ack", buf);
        if (found == 1) break;
        if (found < 0) {
            fprintf(stderr, "trivial_worker: connection closed before the ack\n");
            return 1;
        }
    }
    close(fd);
    return 0;
}
