/* Bad-input sweep, processes and signals: wait/waitpid/wait3/wait4/waitid with no child,
 * bad options and bad pointers; posix_spawn/posix_spawnp/exec* of missing programs;
 * system/popen with bad arguments; sigaction/signal/bsd_signal/sysv_signal/siginterrupt
 * on bad signals; sigprocmask with bad how; sigsuspend/pause woken by a signal;
 * prctl and ptrace with bad requests. Each in main and in a green thread. */
#include "case.h"
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

extern char **environ;
extern __sighandler_t bsd_signal(int sig, __sighandler_t handler);
extern __sighandler_t sysv_signal(int sig, __sighandler_t handler);

#define SHOWSIG(what, expr)                                                          \
    do {                                                                             \
        errno = 0;                                                                   \
        __sighandler_t showsig_r_ = (expr);                                          \
        printf("%s: %s errno=%s\n", what, showsig_r_ == SIG_ERR ? "SIG_ERR" : "ok",  \
               showsig_r_ == SIG_ERR ? en(errno) : "0");                             \
    } while (0)

static volatile sig_atomic_t got;
static void on_sig(int s) { (void)s; got++; }

/* A child that exits with `code` at once. */
static pid_t child(int code) {
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) _exit(code);
    return p;
}

/* ---- waits -------------------------------------------------------------------------- */

BOTH(hostile_proc_wait_no_child, { int st; SHOW("wait", wait(&st)); SHOW("wait NULL", wait(NULL)); })
BOTH(hostile_proc_waitpid_no_child, { int st; SHOW("waitpid -1", waitpid(-1, &st, 0)); SHOW("waitpid 1", waitpid(1, &st, 0)); SHOW("waitpid WNOHANG", waitpid(-1, &st, WNOHANG)); SHOW("waitpid pgrp 0", waitpid(0, &st, 0)); })
BOTH(hostile_proc_waitpid_bad_options, { pid_t p = child(3); int st; SHOW("waitpid bad options", waitpid(p, &st, (int)opaque(0x7fff0000))); SHOW("waitpid", waitpid(p, &st, 0) == p); printf("status=%d\n", WEXITSTATUS(st)); })
BOTH(hostile_proc_waitpid_status_noaccess, { pid_t p = child(4); SHOW("waitpid", waitpid(p, noaccess(), 0)); int st = 0; SHOW("waitpid again", waitpid(p, &st, 0) == p); printf("status=%d\n", WEXITSTATUS(st)); })
BOTH(hostile_proc_waitpid_self, { int st; SHOW("waitpid self", waitpid(getpid(), &st, 0)); })
BOTH(hostile_proc_wait3_no_child, { int st; struct rusage ru; SHOW("wait3", wait3(&st, 0, &ru)); SHOW("wait3 WNOHANG", wait3(&st, WNOHANG, NULL)); })
BOTH(hostile_proc_wait4_bad_options, { pid_t p = child(5); int st; SHOW("wait4 bad", wait4(p, &st, (int)opaque(0x7fff0000), NULL)); SHOW("wait4", wait4(p, &st, 0, NULL) == p); printf("status=%d\n", WEXITSTATUS(st)); })
BOTH(hostile_proc_wait4_rusage_noaccess, { pid_t p = child(6); int st = 0; SHOW("wait4", wait4(p, &st, 0, noaccess())); SHOW("wait4 again", wait4(p, &st, WNOHANG, NULL)); })
BOTH(hostile_proc_waitid_bad_idtype, { siginfo_t si; SHOW("waitid", waitid((idtype_t)opaque(12345), 0, &si, WEXITED)); })
BOTH(hostile_proc_waitid_no_options, { siginfo_t si; SHOW("waitid", waitid(P_ALL, 0, &si, 0)); })
BOTH(hostile_proc_waitid_no_child, { siginfo_t si; SHOW("waitid", waitid(P_ALL, 0, &si, WEXITED)); SHOW("waitid WNOHANG", waitid(P_ALL, 0, &si, WEXITED | WNOHANG)); })
BOTH(hostile_proc_waitid_pid_not_child, { siginfo_t si; SHOW("waitid", waitid(P_PID, 1, &si, WEXITED)); })
BOTH(hostile_proc_waitid_info_noaccess, { pid_t p = child(7); SHOW("waitid", waitid(P_PID, (id_t)p, noaccess(), WEXITED)); int st = 0; SHOW("waitpid after", waitpid(p, &st, 0) == p); })
BOTH(hostile_proc_waitid_pidfd_bad, { siginfo_t si; SHOW("waitid P_PIDFD", waitid(P_PIDFD, 12345, &si, WEXITED)); })

/* ---- spawn and exec ----------------------------------------------------------------- */

BOTH(hostile_proc_spawn_missing, { pid_t p; char *argv[] = {"nope", NULL}; printf("posix_spawn: %s\n", en(posix_spawn(&p, "/nonexistent/nope", NULL, NULL, argv, environ))); })
BOTH(hostile_proc_spawnp_missing, { pid_t p; char *argv[] = {"nope", NULL}; printf("posix_spawnp: %s\n", en(posix_spawnp(&p, "greenify-no-such-program", NULL, NULL, argv, environ))); })
BOTH(hostile_proc_spawn_not_executable, { pid_t p; char *argv[] = {"hostname", NULL}; printf("posix_spawn: %s\n", en(posix_spawn(&p, "/etc/hostname", NULL, NULL, argv, environ))); })
BOTH(hostile_proc_spawn_directory, { pid_t p; char *argv[] = {"x", NULL}; printf("posix_spawn: %s\n", en(posix_spawn(&p, "/", NULL, NULL, argv, environ))); })
BOTH(hostile_proc_spawn_file_action_bad_fd, { pid_t p; posix_spawn_file_actions_t fa; posix_spawn_file_actions_init(&fa); printf("adddup2: %s\n", en(posix_spawn_file_actions_adddup2(&fa, -1, 1))); char *argv[] = {"true", NULL}; printf("posix_spawn: %s\n", en(posix_spawn(&p, "/bin/true", &fa, NULL, argv, environ))); int st; waitpid(p, &st, 0); printf("status=%d\n", WEXITSTATUS(st)); })
BOTH(hostile_proc_spawn_file_action_closed_fd, { pid_t p; posix_spawn_file_actions_t fa; posix_spawn_file_actions_init(&fa); int fd = dup(1); close(fd); posix_spawn_file_actions_adddup2(&fa, fd, 1); char *argv[] = {"true", NULL}; int e = posix_spawn(&p, "/bin/true", &fa, NULL, argv, environ); printf("posix_spawn: %s\n", en(e)); if (!e) { int st; waitpid(p, &st, 0); printf("status=%d\n", WEXITSTATUS(st)); } })
BOTH(hostile_proc_spawn_exit_code, { pid_t p; char *argv[] = {"sh", "-c", "exit 9", NULL}; printf("posix_spawn: %s\n", en(posix_spawn(&p, "/bin/sh", NULL, NULL, argv, environ))); int st; SHOW("waitpid", waitpid(p, &st, 0) == p); printf("status=%d\n", WEXITSTATUS(st)); })
BOTH(hostile_proc_execve_missing, { char *argv[] = {"nope", NULL}; SHOW("execve", execve("/nonexistent/nope", argv, environ)); })
BOTH(hostile_proc_execve_null_path, { char *argv[] = {"nope", NULL}; SHOW("execve", execve(NULLPTR, argv, environ)); })
BOTH(hostile_proc_execve_noaccess_path, { char *argv[] = {"nope", NULL}; SHOW("execve", execve(noaccess(), argv, environ)); })
BOTH(hostile_proc_execve_noaccess_argv, { SHOW("execve", execve("/nonexistent/nope", noaccess(), environ)); })
BOTH(hostile_proc_execve_not_executable, { char *argv[] = {"x", NULL}; SHOW("execve", execve("/etc/hostname", argv, environ)); })
BOTH(hostile_proc_execv_directory, { char *argv[] = {"x", NULL}; SHOW("execv", execv("/", argv)); })
BOTH(hostile_proc_execvp_missing, { char *argv[] = {"x", NULL}; SHOW("execvp", execvp("greenify-no-such-program", argv)); })
BOTH(hostile_proc_execvp_empty, { char *argv[] = {"x", NULL}; SHOW("execvp", execvp("", argv)); })
BOTH(hostile_proc_execvpe_missing, { char *argv[] = {"x", NULL}; SHOW("execvpe", execvpe("greenify-no-such-program", argv, environ)); })
BOTH(hostile_proc_fexecve_bad_fd, { char *argv[] = {"x", NULL}; SHOW("fexecve", fexecve(-1, argv, environ)); SHOW("fexecve closed", fexecve(12345, argv, environ)); })
BOTH(hostile_proc_fexecve_not_executable, { int fd = open("/etc/hostname", O_RDONLY); char *argv[] = {"x", NULL}; SHOW("fexecve", fexecve(fd, argv, environ)); })
BOTH(hostile_proc_system_null, { printf("system(NULL): %d\n", system(NULL) != 0); })
BOTH(hostile_proc_system_missing, { int r = system("exec /nonexistent/nope 2>/dev/null"); printf("system: exited=%d status=%d\n", WIFEXITED(r), WEXITSTATUS(r)); })
/* glibc's mode parsing: 'r', 'w', 'e' in any order and repeated, exactly one of r and w. */
BOTH(hostile_proc_popen_bad_mode, {
    const char *modes[] = {"z", "rw", "wr", "", "e", "ee", "r+", "rb", "rex", "rr", "ww", "er", "eer", "we"};
    for (unsigned i = 0; i < sizeof modes / sizeof *modes; i++) {
        errno = 0;
        FILE *f = popen("true", modes[i]);
        printf("popen \"%s\": %s errno=%s", modes[i], f ? "stream" : "NULL", f ? "0" : en(errno));
        if (f) printf(" reading=%d cloexec=%d", (fcntl(fileno(f), F_GETFL) & O_ACCMODE) == O_RDONLY, fcntl(fileno(f), F_GETFD) & FD_CLOEXEC);
        printf("\n");
        if (f) pclose(f);
    }
})
BOTH(hostile_proc_popen_missing_program, { FILE *f = popen("exec /nonexistent/nope 2>/dev/null", "r"); char b[8]; size_t n = f ? fread(b, 1, sizeof b, f) : 0; int r = f ? pclose(f) : -1; printf("read=%zu exited=%d status=%d\n", n, WIFEXITED(r), WEXITSTATUS(r)); })
BOTH(hostile_proc_pclose_twice_reaped, { FILE *f = popen("exit 3", "r"); int st; waitpid(-1, &st, 0); errno = 0; int r = pclose(f); printf("pclose after reap: %d errno=%s\n", r, r == -1 ? en(errno) : "0"); })

/* ---- signal dispositions ------------------------------------------------------------- */

BOTH(hostile_proc_sigaction_bad_signals, { struct sigaction sa = {.sa_handler = on_sig}; SHOW("sigaction 0", sigaction(0, &sa, NULL)); SHOW("sigaction 65", sigaction(65, &sa, NULL)); SHOW("sigaction -1", sigaction(-1, &sa, NULL)); SHOW("sigaction SIGKILL", sigaction(SIGKILL, &sa, NULL)); SHOW("sigaction SIGSTOP", sigaction(SIGSTOP, &sa, NULL)); SHOW("sigaction SIGKILL query", sigaction(SIGKILL, NULL, &sa)); })
BOTH(hostile_proc_sigaction_act_noaccess, { SHOW("sigaction", sigaction(SIGUSR1, noaccess(), NULL)); })
BOTH(hostile_proc_sigaction_old_noaccess, { struct sigaction sa = {.sa_handler = on_sig}; SHOW("sigaction", sigaction(SIGUSR1, &sa, noaccess())); struct sigaction now; sigaction(SIGUSR1, NULL, &now); printf("installed=%d\n", now.sa_handler == on_sig); signal(SIGUSR1, SIG_DFL); })
BOTH(hostile_proc_sigaction_garbage_flags, { struct sigaction sa = {.sa_handler = on_sig, .sa_flags = (int)opaque(0x00ff00ff)}; SHOW("sigaction", sigaction(SIGUSR1, &sa, NULL)); got = 0; raise(SIGUSR1); printf("got=%d\n", got); signal(SIGUSR1, SIG_DFL); })
BOTH(hostile_proc_signal_bad, { SHOWSIG("signal 0", signal(0, on_sig)); SHOWSIG("signal 65", signal(65, on_sig)); SHOWSIG("signal SIGKILL", signal(SIGKILL, on_sig)); SHOWSIG("signal SIGSTOP ign", signal(SIGSTOP, SIG_IGN)); })
BOTH(hostile_proc_bsd_signal_bad, { SHOWSIG("bsd_signal 0", bsd_signal(0, on_sig)); SHOWSIG("bsd_signal 65", bsd_signal(65, on_sig)); SHOWSIG("bsd_signal SIGKILL", bsd_signal(SIGKILL, on_sig)); })
BOTH(hostile_proc_sysv_signal_bad, { SHOWSIG("sysv_signal 0", sysv_signal(0, on_sig)); SHOWSIG("sysv_signal 65", sysv_signal(65, on_sig)); SHOWSIG("sysv_signal SIGKILL", sysv_signal(SIGKILL, on_sig)); })
BOTH(hostile_proc_sysv_signal_oneshot, { sysv_signal(SIGUSR2, on_sig); got = 0; raise(SIGUSR2); struct sigaction now; sigaction(SIGUSR2, NULL, &now); printf("got=%d reset=%d\n", got, now.sa_handler == SIG_DFL); })
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
BOTH(hostile_proc_siginterrupt_bad, { SHOW("siginterrupt 0", siginterrupt(0, 1)); SHOW("siginterrupt 65", siginterrupt(65, 1)); SHOW("siginterrupt SIGKILL", siginterrupt(SIGKILL, 1)); })
#pragma GCC diagnostic pop
BOTH(hostile_proc_sigprocmask_bad_how, { sigset_t s; sigemptyset(&s); SHOW("sigprocmask", sigprocmask(12345, &s, NULL)); SHOW("sigprocmask NULL set bad how", sigprocmask(12345, NULL, NULL)); })
BOTH(hostile_proc_sigprocmask_block_kill, { sigset_t s; sigemptyset(&s); sigaddset(&s, SIGKILL); sigaddset(&s, SIGSTOP); SHOW("sigprocmask", sigprocmask(SIG_BLOCK, &s, NULL)); sigset_t now; sigprocmask(SIG_BLOCK, NULL, &now); printf("kill blocked=%d stop blocked=%d\n", sigismember(&now, SIGKILL), sigismember(&now, SIGSTOP)); })
BOTH(hostile_proc_sigsuspend_noaccess, { SHOW("sigsuspend", sigsuspend(noaccess())); })
BOTH(hostile_proc_sigsuspend_pending, { signal(SIGUSR1, on_sig); sigset_t b, empty; sigemptyset(&b); sigaddset(&b, SIGUSR1); sigprocmask(SIG_BLOCK, &b, NULL); got = 0; raise(SIGUSR1); sigemptyset(&empty); SHOW("sigsuspend", sigsuspend(&empty)); printf("got=%d\n", got); sigprocmask(SIG_UNBLOCK, &b, NULL); signal(SIGUSR1, SIG_DFL); })
BOTH(hostile_proc_sigwait_bad_set_empty_pending, { sigset_t s; sigemptyset(&s); sigaddset(&s, SIGUSR2); pthread_sigmask(SIG_BLOCK, &s, NULL); raise(SIGUSR2); int sig = 0; printf("sigwait: %s sig=%d\n", en(sigwait(&s, &sig)), sig == SIGUSR2); })
BOTH(hostile_proc_signalfd_kill_in_mask, { sigset_t s; sigemptyset(&s); sigaddset(&s, SIGKILL); SHOW("signalfd", signalfd(-1, &s, 0) >= 0); })

/* ---- prctl / ptrace ----------------------------------------------------------------- */

BOTH(hostile_proc_prctl_bad_option, { SHOW("prctl", prctl((int)opaque(0x7fff1234), 0, 0, 0, 0)); })
BOTH(hostile_proc_prctl_set_name_noaccess, { SHOW("prctl PR_SET_NAME", prctl(PR_SET_NAME, (unsigned long)noaccess(), 0, 0, 0)); })
BOTH(hostile_proc_prctl_get_name_noaccess, { SHOW("prctl PR_GET_NAME", prctl(PR_GET_NAME, (unsigned long)noaccess(), 0, 0, 0)); })
BOTH(hostile_proc_prctl_set_name_long, { SHOW("prctl PR_SET_NAME", prctl(PR_SET_NAME, (unsigned long)"a-name-well-over-sixteen-bytes", 0, 0, 0)); char n[32] = {0}; prctl(PR_GET_NAME, (unsigned long)n, 0, 0, 0); printf("name=%s\n", n); })
BOTH(hostile_proc_prctl_pdeathsig_bad, { SHOW("prctl PR_SET_PDEATHSIG", prctl(PR_SET_PDEATHSIG, 12345, 0, 0, 0)); })
BOTH(hostile_proc_ptrace_bad_request, { SHOW("ptrace", ptrace((enum __ptrace_request)opaque(0x7fff1234), 1, NULL, NULL)); })
BOTH(hostile_proc_ptrace_peek_no_tracee, { SHOW("ptrace PEEKDATA", ptrace(PTRACE_PEEKDATA, 1, NULL, NULL)); })
BOTH(hostile_proc_ptrace_cont_not_traced, { pid_t p = child(0); int st; waitpid(p, &st, 0); SHOW("ptrace CONT", ptrace(PTRACE_CONT, p, NULL, NULL)); })
