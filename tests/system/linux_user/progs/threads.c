/* pthreads: mutexes, condition variables, atomics, TLS, join values, thread ids. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NTHREADS 4
#define ITERS 2000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static long counter, atomic_counter;
static int queue[16], qhead, qtail, done;
static __thread int tls_value;
static pid_t tids[NTHREADS];

static void *worker(void *arg)
{
    long id = (long)arg;
    tls_value = (int)id * 100;
    tids[id] = (pid_t)syscall(SYS_gettid);
    for (int i = 0; i < ITERS; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
        __atomic_fetch_add(&atomic_counter, 1, __ATOMIC_SEQ_CST);
    }
    return (void *)(long)(tls_value + 1);
}

static void *producer(void *arg)
{
    for (int i = 1; i <= 50; i++) {
        pthread_mutex_lock(&lock);
        while ((qtail + 1) % 16 == qhead)
            pthread_cond_wait(&cond, &lock);
        queue[qtail] = i;
        qtail = (qtail + 1) % 16;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_lock(&lock);
    done = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t th[NTHREADS];
    tls_value = -1;
    for (long i = 0; i < NTHREADS; i++)
        pthread_create(&th[i], NULL, worker, (void *)i);
    long sum = 0;
    for (int i = 0; i < NTHREADS; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        sum += (long)ret;
    }
    printf("mutex counter: %ld\n", counter);
    printf("atomic counter: %ld\n", atomic_counter);
    printf("join values: %ld, main tls still %d\n", sum, tls_value);
    int distinct = 1;
    for (int i = 0; i < NTHREADS; i++)
        for (int j = 0; j < i; j++)
            if (tids[i] == tids[j] || tids[i] == getpid()) distinct = 0;
    printf("distinct thread ids: %d\n", distinct);

    pthread_t p;
    pthread_create(&p, NULL, producer, NULL);
    long total = 0;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (qhead == qtail && !done)
            pthread_cond_wait(&cond, &lock);
        if (qhead == qtail && done)
            break;
        total += queue[qhead];
        qhead = (qhead + 1) % 16;
        pthread_cond_broadcast(&cond);
    }
    pthread_mutex_unlock(&lock);
    pthread_join(p, NULL);
    printf("producer/consumer total: %ld\n", total);
    if (argc > 1) {
        /* exit() from a second thread ends the whole process with its status. */
        pthread_create(&p, NULL, (void *(*)(void *))exit, (void *)(long)atoi(argv[1]));
        pause();
    }
    return 0;
}
