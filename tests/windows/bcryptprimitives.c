/* TEST-ONLY shim, never shipped: Wine 8 has no bcryptprimitives.dll, whose ProcessPrng Rust's std
 * imports on Windows for its random numbers (HashMap keys). Real Windows 10/11 has it. Built with
 * mingw into the tests' own WINEPREFIX (tests/windows/prefix.sh), over advapi32's RtlGenRandom. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length); /* RtlGenRandom */

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
