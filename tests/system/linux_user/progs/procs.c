/* fork, vfork, execve (of itself and of a shell script), pipes, dup2, wait statuses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0) {
        char line[64] = {0};
        if (fgets(line, sizeof line, stdin))
            printf("exec'd child read: %s", line);
        return 7;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    int p[2];
    pipe(p);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        write(p[1], "from child", 10);
        _exit(3);
    }
    close(p[1]);
    char buf[32] = {0};
    ssize_t n = read(p[0], buf, sizeof buf);
    int st;
    pid_t w = waitpid(pid, &st, 0);
    printf("fork: read %zd '%s' waited=%d exited=%d status=%d\n", n, buf, w == pid,
           WIFEXITED(st), WEXITSTATUS(st));

    /* A child killed by a signal. */
    pid = fork();
    if (pid == 0) {
        pause();
        _exit(0);
    }
    kill(pid, 9);
    waitpid(pid, &st, 0);
    printf("killed: signaled=%d sig=%d\n", WIFSIGNALED(st), WTERMSIG(st));

    /* vfork + exec of ourselves, with stdin from a pipe set up by dup2. */
    int q[2];
    pipe(q);
    write(q[1], "piped line\n", 11);
    close(q[1]);
    pid = vfork();
    if (pid == 0) {
        dup2(q[0], 0);
        execl("/proc/self/exe", argv[0], "child", (char *)NULL);
        _exit(127);
    }
    close(q[0]);
    waitpid(pid, &st, 0);
    printf("vfork+exec: status=%d\n", WEXITSTATUS(st));

    /* exec failure is reported to the caller. */
    pid = fork();
    if (pid == 0) {
        execl("/nonexistent/program", "x", (char *)NULL);
        _exit(99);
    }
    waitpid(pid, &st, 0);
    printf("exec missing: status=%d\n", WEXITSTATUS(st));

    /* A '#!' script run through the shell named in its first line. */
    if (argc > 1) {
        pid = fork();
        if (pid == 0) {
            execl(argv[1], argv[1], "arg1", (char *)NULL);
            _exit(98);
        }
        waitpid(pid, &st, 0);
        printf("script: status=%d\n", WEXITSTATUS(st));
    }
    return 0;
}
