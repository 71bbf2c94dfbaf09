#!/bin/sh
# The builder stage of deploy/images/Dockerfile, run from the build context's copy (/src):
#   build-venv.sh SERVICE [REPLACE]
# 1. gRPC stubs from proto/ into libs/common (the flags `make proto` uses);
# 2. $VENV (/opt/venv) with libs/common and services/SERVICE, versions pinned by PIP_CONSTRAINT (the lock);
# 3. REPLACE "old=new": uninstall `old`, install the pinned `new` outside the lock (the GPU
#    builds: faiss-cpu=faiss-gpu-cu12==1.14.1.post1, tensorflow=tensorflow[and-cuda]==2.21.0);
# 4. vector-search: its native Search front (services/vector-search/native/build.sh) into the
#    installed package, where the service looks for it;
# 5. $VENV/bin/service (the image's program: python -m MODULE, default arguments) and
#    $VENV/bin/service-healthcheck, both from the service's row in images.txt.
set -eu
VENV=${VENV:-/opt/venv}  # the image's venv (stage 2 copies it)
TOOLS=${TOOLS:-/opt/protoc}  # grpcio-tools, builder stage only
SERVICE=${1:?usage: build-venv.sh SERVICE [REPLACE] (a service of deploy/images/images.txt)}
REPLACE=${2:-}
HERE=$(dirname "$0")
ROW=$(awk -v s="$SERVICE" '$1 == s' "$HERE/images.txt")
[ -n "$ROW" ] || { echo "unknown SERVICE '$SERVICE': not in $HERE/images.txt" >&2; exit 2; }
set -- $ROW
MODULE=$2 HEALTH=$3
shift 3
ARGS=$*

python -m venv "$TOOLS"
"$TOOLS/bin/pip" install grpcio-tools
"$TOOLS/bin/python" -m grpc_tools.protoc -Iproto --python_out=libs/common/src \
    --pyi_out=libs/common/src --grpc_python_out=libs/common/src proto/fashionrec/*/v1/*.proto
python -m venv "$VENV"
"$VENV/bin/pip" install ./libs/common "./services/$SERVICE"
if [ -n "$REPLACE" ]; then
    "$VENV/bin/pip" uninstall -y "${REPLACE%%=*}"
    PIP_CONSTRAINT='' "$VENV/bin/pip" install "${REPLACE#*=}"
fi
"$VENV/bin/python" -c "import $MODULE"
if [ "$SERVICE" = vector-search ]; then
    PYTHON="$VENV/bin/python" bash services/vector-search/native/build.sh
    LIB=services/vector-search/src/vector_search/native/libvsfront.so.0
    if [ -f "$LIB" ]; then
        cp "$LIB" "$("$VENV/bin/python" -c 'import vector_search.native as n, os; print(os.path.dirname(n.__file__))')/"
    fi
fi

printf '#!/bin/sh\n# %s image: python -m %s (arguments replace the defaults)\n[ "$#" -gt 0 ] || set -- %s\nexec python -m %s "$@"\n' \
    "$SERVICE" "$MODULE" "$ARGS" "$MODULE" > "$VENV/bin/service"
printf '#!/bin/sh\nexec python -m fashionrec_common.probe %s\n' "$HEALTH" > "$VENV/bin/service-healthcheck"
chmod 0755 "$VENV/bin/service" "$VENV/bin/service-healthcheck"
