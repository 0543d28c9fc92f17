#!/usr/bin/env bash
# Install Debian's chromium and its chromedriver for the dashboard's browser test. Idempotent.
set -euo pipefail
if ! command -v chromium > /dev/null || ! command -v chromedriver > /dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver > /dev/null
fi
