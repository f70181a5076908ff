#!/usr/bin/env bash
# Compile ARX's core (arx-deidentifier/arx, Apache-2.0) and ArxRun.java for the side-by-side benchmarks.
#
#   benchmarks/arx/build.sh ARX_CHECKOUT OUT_DIR
#
# ARX_CHECKOUT is a clone of https://github.com/arx-deidentifier/arx (src/main and lib/ant are used).
# Three jars the core needs only for PDF certificates and a Hadoop interface may be missing from a
# shallow copy; stubs/ holds compile-time stand-ins for the few classes they provide (never called here).
# Afterwards: python benchmarks/deid_grid.py --arx OUT_DIR
set -euo pipefail
src=$(cd "$1" && pwd)
out=$2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/classes"
cp_jars=$(find "$src/lib/ant" -name '*.jar' | tr '\n' ':')
javac -nowarn -encoding UTF-8 -d "$out/classes" -cp "$cp_jars" \
  $(find "$src/src/main" "$here/stubs" -name '*.java') 2>&1 | grep -v '^Note:' || true
javac -nowarn -encoding UTF-8 -d "$out/classes" -cp "$out/classes:$cp_jars" "$here/ArxRun.java"
echo "$out/classes:$cp_jars" > "$out/classpath"
echo "ARX compiled into $out (classpath in $out/classpath)"
