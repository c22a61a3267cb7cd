/*
 * The overhead benchmark's trivial worker: the least a jobvisor worker can do.
 *
 * Reads JOBVISOR_SOCKET (a Unix socket path, or tcp://127.0.0.1:PORT), JOBVISOR_JOB_ID
 * and JOBVISOR_TOKEN; connects; runs the version 2 handshake: sends a hand-encoded
 * msgpack hello {"type":"hello","v":2,"job_id":ID,"pid":PID,"nonce":32 random bytes},
 * checks the challenge's proof (HMAC-SHA256 keyed with SHA-256(token)), answers
 * {"type":"auth","proof":...}, reads the welcome; sends {"type":"started"} and
 * {"type":"completed"} (no result); waits for the ack; exits 0. Any refusal or surprise
 * (a wrong proof included) exits 1. With the argument --bare it exits 0 at once: the
 * baseline is the same binary through the same spawn path.
 *
 * Frames are a 4-byte big-endian length and one msgpack map (docs/protocol.md). SHA-256
 * is written out below (FIPS 180-4) so that the benchmark needs no crypto library.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_FRAME (1u << 20)
#define NONCE_SIZE 32

/* --- SHA-256 and HMAC-SHA256 ------------------------------------------------------- */

typedef struct {
    uint32_t h[8];
    uint64_t length; /* bytes hashed so far */
    uint8_t block[64];
    size_t used;
} sha256_ctx;

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(sha256_ctx *c, const uint8_t *b) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = ((uint32_t)b[4 * i] << 24) | ((uint32_t)b[4 * i + 1] << 16) |
               ((uint32_t)b[4 * i + 2] << 8) | b[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = c->h[0], bb = c->h[1], cc = c->h[2], d = c->h[3];
    uint32_t e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & bb) ^ (a & cc) ^ (bb & cc));
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = cc;
        cc = bb;
        bb = a;
        a = t1 + t2;
    }
    c->h[0] += a;
    c->h[1] += bb;
    c->h[2] += cc;
    c->h[3] += d;
    c->h[4] += e;
    c->h[5] += f;
    c->h[6] += g;
    c->h[7] += h;
}

static void sha256_init(sha256_ctx *c) {
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, h0, sizeof h0);
    c->length = 0;
    c->used = 0;
}

static void sha256_update(sha256_ctx *c, const uint8_t *p, size_t n) {
    c->length += n;
    while (n > 0) {
        size_t take = 64 - c->used < n ? 64 - c->used : n;
        memcpy(c->block + c->used, p, take);
        c->used += take;
        p += take;
        n -= take;
        if (c->used == 64) {
            sha256_block(c, c->block);
            c->used = 0;
        }
    }
}

static void sha256_final(sha256_ctx *c, uint8_t out[32]) {
    uint64_t bits = c->length * 8;
    uint8_t pad = 0x80, zero = 0, len[8];
    sha256_update(c, &pad, 1);
    while (c->used != 56) sha256_update(c, &zero, 1);
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_update(c, len, 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

/* HMAC-SHA256 with a 32-byte key (the SHA-256 of the token) over `data`. */
static void hmac_sha256(const uint8_t key[32], const uint8_t *data, size_t n, uint8_t out[32]) {
    uint8_t pad[64], inner[32];
    sha256_ctx c;
    memset(pad, 0x36, sizeof pad);
    for (int i = 0; i < 32; i++) pad[i] ^= key[i];
    sha256_init(&c);
    sha256_update(&c, pad, 64);
    sha256_update(&c, data, n);
    sha256_final(&c, inner);
    memset(pad, 0x5c, sizeof pad);
    for (int i = 0; i < 32; i++) pad[i] ^= key[i];
    sha256_init(&c);
    sha256_update(&c, pad, 64);
    sha256_update(&c, inner, 32);
    sha256_final(&c, out);
}

/* A proof: HMAC over label || 0x00 || u32be(len(job_id)) || job_id || first || second. */
static void proof(const uint8_t key[32], const char *label, const char *job_id,
                  const uint8_t *first, const uint8_t *second, uint8_t out[32]) {
    uint8_t data[512];
    size_t l = strlen(label), j = strlen(job_id), n = 0;
    memcpy(data, label, l + 1); /* with its terminating 0x00 */
    n = l + 1;
    data[n++] = (uint8_t)(j >> 24);
    data[n++] = (uint8_t)(j >> 16);
    data[n++] = (uint8_t)(j >> 8);
    data[n++] = (uint8_t)j;
    memcpy(data + n, job_id, j);
    n += j;
    memcpy(data + n, first, NONCE_SIZE);
    n += NONCE_SIZE;
    memcpy(data + n, second, NONCE_SIZE);
    n += NONCE_SIZE;
    hmac_sha256(key, data, n, out);
}

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

/* msgpack bin8 */
static uint8_t *put_bin(uint8_t *p, const uint8_t *b, size_t n) {
    *p++ = 0xc4;
    *p++ = (uint8_t)n;
    memcpy(p, b, n);
    return p + n;
}

/* Where the msgpack string `want` sits in body[0:n], or NULL. */
static const uint8_t *find_str(const uint8_t *body, uint32_t n, const char *want) {
    uint8_t needle[64];
    size_t k = (size_t)(put_str(needle, want) - needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(body + i, needle, k) == 0) return body + i + k;
    return NULL;
}

/* Read one frame into body; its length, or -1 on error. */
static long read_frame(int fd, uint8_t *body) {
    uint8_t head[4];
    if (read_all(fd, head, 4) < 0) return -1;
    uint32_t n = ((uint32_t)head[0] << 24) | ((uint32_t)head[1] << 16) |
                 ((uint32_t)head[2] << 8) | head[3];
    if (n > MAX_FRAME || read_all(fd, body, n) < 0) return -1;
    return (long)n;
}

/* Read one frame; return 1 if its body holds the msgpack string `want`, 0 if not, -1 on error. */
static int read_frame_with(int fd, const char *want, uint8_t *body) {
    long n = read_frame(fd, body);
    if (n < 0) return -1;
    return find_str(body, (uint32_t)n, want) != NULL;
}

/* The 32-byte bin that follows the key `key` in a challenge body, or NULL. */
static const uint8_t *bin32_after(const uint8_t *body, uint32_t n, const char *key) {
    const uint8_t *v = find_str(body, n, key);
    if (v == NULL || v + 2 + 32 > body + n || v[0] != 0xc4 || v[1] != 32) return NULL;
    return v + 2;
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
    uint8_t nonce[NONCE_SIZE], key[32];
    if (getrandom(nonce, sizeof nonce, 0) != (ssize_t)sizeof nonce) return 1;
    sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, (const uint8_t *)token, strlen(token));
    sha256_final(&c, key);

    uint8_t *p = buf + 4;
    *p++ = 0x85; /* map of 5 */
    p = put_str(p, "type");
    p = put_str(p, "hello");
    p = put_str(p, "v");
    p = put_uint(p, 2);
    p = put_str(p, "job_id");
    p = put_str(p, job_id);
    p = put_str(p, "pid");
    p = put_uint(p, (uint32_t)getpid());
    p = put_str(p, "nonce");
    p = put_bin(p, nonce, sizeof nonce);
    if (write_all(fd, buf, finish_frame(buf, p)) < 0) return 1;

    long n = read_frame(fd, buf);
    const uint8_t *sup_nonce = n < 0 ? NULL : bin32_after(buf, (uint32_t)n, "nonce");
    const uint8_t *sup_proof = n < 0 ? NULL : bin32_after(buf, (uint32_t)n, "proof");
    if (sup_nonce == NULL || sup_proof == NULL || find_str(buf, (uint32_t)n, "challenge") == NULL) {
        fprintf(stderr, "trivial_worker: no challenge\n");
        return 1;
    }
    uint8_t expected[32], mine[32], diff = 0;
    proof(key, "jobvisor/2 supervisor", job_id, nonce, sup_nonce, expected);
    for (int i = 0; i < 32; i++) diff |= (uint8_t)(expected[i] ^ sup_proof[i]);
    if (diff != 0) {
        fprintf(stderr, "trivial_worker: the challenge proof is wrong: not our supervisor\n");
        return 1;
    }
    proof(key, "jobvisor/2 worker", job_id, sup_nonce, nonce, mine);
    uint8_t auth[64];
    p = auth + 4;
    *p++ = 0x82; /* map of 2 */
    p = put_str(p, "type");
    p = put_str(p, "auth");
    p = put_str(p, "proof");
    p = put_bin(p, mine, sizeof mine);
    if (write_all(fd, auth, finish_frame(auth, p)) < 0) return 1;

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
