#!/usr/bin/env bash
# Healthy when TF Serving reports READY_MODEL (default infogan) as AVAILABLE on its REST
# port. Pure bash (/dev/tcp): the tensorflow/serving image has no curl or wget.
set -euo pipefail
exec 3<>"/dev/tcp/${REST_HOST:-127.0.0.1}/${REST_PORT:-8501}"
printf 'GET /v1/models/%s HTTP/1.0\r\nHost: localhost\r\n\r\n' "${READY_MODEL:-infogan}" >&3
grep -q '"AVAILABLE"' <&3
