/*
 * bcryptprimitives.dll for Debian 12's Wine 8, which lacks it (Wine 9 and every Windows since 10
 * have it). Rust's standard library on Windows takes its random bytes (HashMap keys) from
 * ProcessPrng in this DLL, so without it no Rust program starts under Wine 8.
 *
 * tests/distribution builds this with MinGW-w64 into the test's own Wine prefix (system32),
 * never next to a shipped binary: the binary under test is byte for byte what ships. ProcessPrng
 * is answered from RtlGenRandom (advapi32's SystemFunction036), Wine's system RNG.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len > 0) {
    ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
    if (!SystemFunction036(data, chunk)) return FALSE;
    data += chunk;
    len -= chunk;
  }
  return TRUE;
}
