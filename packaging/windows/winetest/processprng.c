/*
 * Test-only stand-in for Windows' bcryptprimitives.dll, for Wine 8, which
 * lacks it. Go 1.26's runtime on Windows takes its randomness from
 * ProcessPrng there and stops without it. This shim answers ProcessPrng
 * from advapi32's RtlGenRandom (SystemFunction036). It is copied into a
 * throwaway Wine prefix's system32 by scripts/test-windows and is NEVER
 * shipped: real Windows has the real DLL.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG chunk = len > 0x80000000u ? 0x80000000u : (ULONG)len;
		if (!SystemFunction036(data, chunk))
			return FALSE;
		data += chunk;
		len -= chunk;
	}
	return TRUE;
}
