/* The pod sandbox's process, as upstream Kubernetes' pause.c: hold the pod's
 * namespaces, sleep forever, reap zombies when it is PID 1 of a shared PID
 * namespace, and exit on SIGINT or SIGTERM. Built -static -Os by build.rs. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(const char *s) { (void)!write(2, s, strlen(s)); }

static void sigdown(int signo) {
  say(signo == SIGINT ? "Shutting down, got signal: Interrupt\n"
                      : "Shutting down, got signal: Terminated\n");
  _exit(0);
}

static void sigreap(int signo) {
  (void)signo;
  while (waitpid(-1, NULL, WNOHANG) > 0)
    ;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    say("pause.c krate\n");
    return 0;
  }
  if (getpid() != 1)
    say("Warning: pause should be the first process\n");

  struct sigaction down;
  memset(&down, 0, sizeof(down));
  down.sa_handler = sigdown;
  if (sigaction(SIGINT, &down, NULL) < 0 || sigaction(SIGTERM, &down, NULL) < 0)
    return 1;

  struct sigaction reap;
  memset(&reap, 0, sizeof(reap));
  reap.sa_handler = sigreap;
  reap.sa_flags = SA_NOCLDSTOP;
  if (sigaction(SIGCHLD, &reap, NULL) < 0)
    return 3;

  for (;;)
    pause();
  say("Error: infinite loop terminated\n");
  return 42;
}
