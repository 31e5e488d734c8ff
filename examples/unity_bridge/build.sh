#!/usr/bin/env bash
# Builds the C# side with Debian's Mono compiler (apt: mono-mcs mono-runtime
# libmono-system-net-http4.0-cil):
#   bin/app.exe      the headless CartPole app (runtime + Headless/)
#   bin/vectors.exe  the shared-vector runner (codec, spaces, distributions + Tests/VectorRunner.cs)
#   bin/clienttests.exe  PolicyClient checks against a fake server (Tests/ClientTests.cs)
# Unity/ is compiled too (into bin/unity_check.dll) to prove that everything behind
# `#if UNITY_5_3_OR_NEWER` leaves valid C# outside Unity.
# Usage: examples/unity_bridge/build.sh        (from anywhere)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
command -v mcs >/dev/null || { echo "mcs not found: apt-get install mono-mcs mono-runtime libmono-system-net-http4.0-cil" >&2; exit 127; }
mkdir -p bin
FLAGS=(-nologo -warnaserror+ -optimize+ -langversion:7)
RUNTIME=(Runtime/*.cs)
mcs "${FLAGS[@]}" -target:exe -r:System.Net.Http.dll -out:bin/app.exe "${RUNTIME[@]}" Headless/*.cs
mcs "${FLAGS[@]}" -target:exe -out:bin/vectors.exe Runtime/MsgPack.cs Runtime/Errors.cs Runtime/Json.cs Runtime/Spaces.cs Runtime/Distributions.cs Tests/VectorRunner.cs
mcs "${FLAGS[@]}" -target:exe -r:System.Net.Http.dll -out:bin/clienttests.exe "${RUNTIME[@]}" Tests/ClientTests.cs
mcs "${FLAGS[@]}" -target:library -r:System.Net.Http.dll -out:bin/unity_check.dll "${RUNTIME[@]}" Unity/*.cs
echo "built bin/app.exe bin/vectors.exe bin/clienttests.exe bin/unity_check.dll"
