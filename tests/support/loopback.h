/* loopback.h: TCP ports on 127.0.0.1 for tests that start a server (git
 * daemon, sshd) of their own. */
#ifndef NOTES_TEST_LOOPBACK_H
#define NOTES_TEST_LOOPBACK_H

/* A free TCP port on 127.0.0.1 (bound and released), or -1. */
int test_free_port(void);
/* Whether something accepts connections on 127.0.0.1:port. */
int test_accepts(int port);

#endif
