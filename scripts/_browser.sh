# Sourced by scripts/test: the dashboard's browser test (tests/dashboard/) drives Debian's
# headless chromium through its chromedriver. Install both, quietly, only when missing
# (the browser test fails with a message naming this script if they are not there).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    echo "==> installing Debian's chromium and chromium-driver for the dashboard's browser test" >&2
    _jv_sudo=""
    if [ "$(id -u)" -ne 0 ]; then _jv_sudo="sudo"; fi
    $_jv_sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $_jv_sudo apt-get install -y -qq --no-install-recommends \
        chromium chromium-driver >/dev/null
fi
