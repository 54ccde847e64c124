/* SPDX-License-Identifier: GPL-2.0 */
/*
 * poke(): write one byte and report the signal the write raised (SIGBUS
 * from a dead window, SIGSEGV from a read-only mapping), or 0: for the
 * tests of what a mapping lets a process write.
 */
#ifndef MMK_POKE_H
#define MMK_POKE_H

#include <setjmp.h>
#include <signal.h>

static sigjmp_buf poke_jmp;
static volatile sig_atomic_t poke_sig;

static void poke_on_fault(int sig)
{
	poke_sig = sig;
	siglongjmp(poke_jmp, 1);
}

static inline int poke(volatile char *p, char v)
{
	struct sigaction sa = { .sa_handler = poke_on_fault }, old_bus, old_segv;
	int sig;

	sigaction(SIGBUS, &sa, &old_bus);
	sigaction(SIGSEGV, &sa, &old_segv);
	poke_sig = 0;
	if (!sigsetjmp(poke_jmp, 1))
		*p = v;
	sig = poke_sig;
	sigaction(SIGBUS, &old_bus, NULL);
	sigaction(SIGSEGV, &old_segv, NULL);
	return sig;
}

#endif /* MMK_POKE_H */
