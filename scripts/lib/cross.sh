# shellcheck shell=bash
# Sourced by scripts/package and scripts/test: the Rust targets aib ships from Linux, the Debian
# cross toolchains and emulators they need, and how cargo is told to use them.
#
#   cross_platforms                 the platforms built here (Node's platform-arch names)
#   cross_target PLATFORM           its Rust target (also darwin-*, built on macOS only)
#   cross_setup TARGET              rustup target + Debian packages + linker variables, or exit 2
#   cross_need COMMAND|/PATH PACKAGE  install a Debian package when its command (or file) is missing
#
# Adding a platform is one line in CROSS_PLATFORMS and one case in cross_setup.

# Platform (the extension's bin/<platform>/ folder, the action's runner) → Rust target.
CROSS_PLATFORMS=(
  "linux-x64:x86_64-unknown-linux-musl"
  "linux-arm64:aarch64-unknown-linux-musl"
  "win32-x64:x86_64-pc-windows-gnu"
  "darwin-x64:x86_64-apple-darwin"
  "darwin-arm64:aarch64-apple-darwin"
)
# The ones a Linux machine builds (macOS targets need Apple's SDK: the release workflow builds
# them on macOS runners).
CROSS_LINUX_BUILT=(linux-x64 linux-arm64 win32-x64)

cross_platforms() { printf '%s\n' "${CROSS_LINUX_BUILT[@]}"; }

cross_target() {
  local entry
  for entry in "${CROSS_PLATFORMS[@]}"; do
    [ "${entry%%:*}" = "$1" ] && { echo "${entry#*:}"; return 0; }
  done
  return 1
}

cross_die() { echo "${CROSS_WHO:-scripts}: $*" >&2; exit 2; }

# Installs PACKAGE from Debian's archive when COMMAND is not on PATH (as root, or with sudo
# when it asks no password); otherwise says what to run.
cross_need() {
  local cmd=$1 pkg=$2 sudo=()
  # An absolute path is a file the package provides (headers, not a command).
  if [[ "$cmd" == /* ]]; then [ -e "$cmd" ] && return 0; else command -v "$cmd" >/dev/null 2>&1 && return 0; fi
  [ "$(id -u)" -eq 0 ] || { sudo -n true 2>/dev/null && sudo=(sudo -n); } ||
    cross_die "$cmd is missing: run 'sudo apt-get install $pkg'"
  command -v apt-get >/dev/null 2>&1 || cross_die "$cmd is missing and this is not Debian/Ubuntu: install $pkg"
  echo "==> apt-get install $pkg (for $cmd)"
  if [ -z "${CROSS_APT_UPDATED:-}" ]; then
    "${sudo[@]}" apt-get update -qq >/dev/null || cross_die "apt-get update failed"
    CROSS_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null ||
    cross_die "apt-get install $pkg failed"
  [ -e "$cmd" ] || command -v "$cmd" >/dev/null 2>&1 || cross_die "$pkg is installed but $cmd is still missing"
}

cross_setup() {
  local target=$1
  case "$target" in
    x86_64-unknown-linux-musl)
      cross_need musl-gcc musl-tools
      ;;
    aarch64-unknown-linux-musl)
      # Debian's glibc cross gcc links Rust's self-contained musl (crt objects and libc.a come
      # with the rustup target) and compiles the C of aws-lc-sys.
      cross_need aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
      # Its C headers (only recommended by the compiler's package): ring's C includes them.
      cross_need /usr/aarch64-linux-gnu/include/stdint.h libc6-dev-arm64-cross
      export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc
      export CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc
      export AR_aarch64_unknown_linux_musl=aarch64-linux-gnu-ar
      ;;
    x86_64-pc-windows-gnu)
      cross_need x86_64-w64-mingw32-gcc gcc-mingw-w64-x86-64
      ;;
    *-apple-darwin)
      [ "$(uname -s)" = Darwin ] || cross_die "$target is built on macOS only (the release workflow's macOS runners)"
      ;;
    *) cross_die "no cross toolchain known for $target" ;;
  esac
  if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$target"; then
    echo "==> rustup target add $target"
    rustup target add "$target" >/dev/null 2>&1 || cross_die "rustup target add $target failed"
  fi
}
