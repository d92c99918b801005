/* Signal handlers: synchronous faults, masks, alternate stacks, timers, EINTR, frames. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static sigjmp_buf env;
static volatile sig_atomic_t count;
static volatile int last_sig, last_code;
static volatile void *last_addr;
static char *ro_page;
static char altstack[65536];
static volatile int on_alt;

static void jump_handler(int sig, siginfo_t *si, void *uc)
{
    last_sig = sig;
    last_code = si->si_code;
    last_addr = si->si_addr;
    siglongjmp(env, 1);
}

static void fix_handler(int sig, siginfo_t *si, void *uc)
{
    last_sig = sig;
    last_code = si->si_code;
    last_addr = si->si_addr;
    mprotect(ro_page, 4096, PROT_READ | PROT_WRITE);
}

static void count_handler(int sig)
{
    char local;
    on_alt = &local >= altstack && &local < altstack + sizeof altstack;
    volatile double x = 1.0;
    for (int i = 0; i < 10; i++) x = x * 1.5;   /* clobber FP state inside the handler */
    count++;
    last_sig = sig;
}

static void install(int sig, void (*h)(int, siginfo_t *, void *), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO | flags;
    sigaction(sig, &sa, NULL);
}

static void install_simple(int sig, void (*h)(int), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = flags;
    sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 1 && strcmp(argv[1], "abort") == 0) {
        printf("aborting\n");
        abort();
    }
    if (argc > 1 && strcmp(argv[1], "segv") == 0) {
        printf("unhandled segv\n");
        *(volatile int *)16 = 1;
        return 0;
    }
    install(SIGSEGV, jump_handler, 0);
    if (sigsetjmp(env, 1) == 0)
        *(volatile int *)0 = 1;
    printf("SIGSEGV null: sig=%d code=%d addr=%p\n", last_sig, last_code, last_addr);

    ro_page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    install(SIGSEGV, fix_handler, 0);
    ro_page[100] = 42;
    printf("SIGSEGV read-only, fixed and resumed: code=%d addr_ok=%d value=%d\n", last_code,
           last_addr == ro_page + 100, ro_page[100]);

    install(SIGFPE, jump_handler, 0);
    volatile int zero = 0, num = 7;
    if (sigsetjmp(env, 1) == 0)
        num = num / zero;
    printf("SIGFPE: sig=%d code=%d\n", last_sig, last_code);

    install(SIGILL, jump_handler, 0);
    if (sigsetjmp(env, 1) == 0)
        __asm__ volatile("ud2");
    printf("SIGILL: sig=%d code=%d\n", last_sig, last_code);

    install_simple(SIGTRAP, count_handler, 0);
    __asm__ volatile("int3");
    printf("SIGTRAP: resumed after int3, count=%d\n", count);

    volatile double keep = 3.25;
    install_simple(SIGUSR1, count_handler, 0);
    raise(SIGUSR1);
    printf("raise SIGUSR1: count=%d fp kept=%g\n", count, keep * 2);

    sigset_t set, old, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    install_simple(SIGUSR2, count_handler, 0);
    sigprocmask(SIG_BLOCK, &set, &old);
    raise(SIGUSR2);
    sigpending(&pend);
    printf("blocked: count=%d pending=%d\n", count, sigismember(&pend, SIGUSR2));
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("unblocked: count=%d last=%d\n", count, last_sig);

    stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0 };
    printf("sigaltstack: %d\n", sigaltstack(&ss, NULL));
    install_simple(SIGUSR1, count_handler, SA_ONSTACK | SA_RESETHAND);
    raise(SIGUSR1);
    struct sigaction now;
    sigaction(SIGUSR1, NULL, &now);
    printf("on alternate stack: %d, reset to default: %d\n", on_alt, now.sa_handler == SIG_DFL);

    /* Block SIGALRM until sigsuspend so that a slow run cannot miss it. */
    install_simple(SIGALRM, count_handler, 0);
    sigset_t alrm, none;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    sigemptyset(&none);
    sigprocmask(SIG_BLOCK, &alrm, NULL);
    struct itimerval it = { { 0, 0 }, { 0, 50000 } };
    setitimer(ITIMER_REAL, &it, NULL);
    int before = count;
    int r0 = sigsuspend(&none);
    printf("sigsuspend woken by SIGALRM: %d %d\n", r0, count == before + 1);
    sigprocmask(SIG_UNBLOCK, &alrm, NULL);

    /* A repeating timer: whenever the read starts, a tick interrupts it. */
    int p[2];
    pipe(p);
    struct itimerval tick = { { 0, 20000 }, { 0, 20000 } }, off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &tick, NULL);
    char c;
    ssize_t r = read(p[0], &c, 1);
    int e = errno;
    setitimer(ITIMER_REAL, &off, NULL);
    printf("read interrupted: %zd %s\n", r, strerror(e));

    install_simple(SIGALRM, count_handler, SA_RESTART);
    pid_t pid = fork();
    if (pid == 0) {
        usleep(300000);
        write(p[1], "x", 1);
        _exit(0);
    }
    setitimer(ITIMER_REAL, &tick, NULL);
    before = count;
    r = read(p[0], &c, 1);
    setitimer(ITIMER_REAL, &off, NULL);
    printf("read restarted: %zd %c handler ran=%d\n", r, c, count > before);
    waitpid(pid, NULL, 0);

    signal(SIGPIPE, SIG_IGN);
    close(p[0]);
    r = write(p[1], "x", 1);
    printf("ignored SIGPIPE: %zd %s\n", r, strerror(errno));

    int ready[2];
    pipe(ready);
    pid = fork();
    if (pid == 0) {
        sigset_t term;
        sigemptyset(&term);
        sigaddset(&term, SIGTERM);
        sigprocmask(SIG_BLOCK, &term, NULL);
        install_simple(SIGTERM, count_handler, 0);
        last_sig = 0;
        write(ready[1], "r", 1);
        while (last_sig != SIGTERM)
            sigsuspend(&none);
        _exit(40 + last_sig);
    }
    read(ready[0], &c, 1);   /* the child's handler is in place */
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    printf("child handled SIGTERM: status=%d\n", WEXITSTATUS(st));
    return 0;
}
