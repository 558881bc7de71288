/*
 * relay_wire.h: the relay's messages (docs/protocol.md, "Relay"), shared by
 * the relay (relay.c) and the members' side (relay_client.c). No I/O.
 */
#ifndef NOTES_SYNC_RELAY_WIRE_H
#define NOTES_SYNC_RELAY_WIRE_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* Member -> relay. */
#define RELAY_REGISTER 0x01 /* T(32) id(16): a control connection */
#define RELAY_CONNECT 0x02  /* T(32) from(16) to(16): pair me with `to` */
#define RELAY_ACCEPT 0x03   /* token(16): answering INCOMING */
#define RELAY_PING 0x04     /* (empty) */
/* Relay -> member. */
#define RELAY_WELCOME 0x81  /* addr(19): where the relay sees you */
#define RELAY_PRESENT 0x82  /* id(16) addr(19) */
#define RELAY_GONE 0x83     /* id(16) */
#define RELAY_INCOMING 0x84 /* token(16) from(16) */
#define RELAY_PAIRED 0x85   /* addr(19): the peer's data connection */
#define RELAY_REFUSED 0x86  /* ASCII reason, then the relay closes */
#define RELAY_PONG 0x87     /* (empty) */

#define RELAY_TAG_LEN 32
#define RELAY_ID_LEN 16
#define RELAY_ADDR_LEN 19   /* family (4|6) ‖ 16 bytes ‖ port u16 LE */
#define RELAY_HDR_LEN 2     /* type ‖ len */
#define RELAY_MSG_MAX (RELAY_HDR_LEN + 255)

#define RELAY_PING_MS 30000 /* a member pings its control connection */

/* The rendezvous tag of a space on UTC day `day` (unix seconds / 86400). */
void sync_relay_tag(const uint8_t secret[32], uint64_t day,
                    uint8_t tag[RELAY_TAG_LEN]);

/* Encode a message into out (RELAY_MSG_MAX bytes): returns its length. */
size_t sync_relay_msg(uint8_t *out, uint8_t type, const void *payload,
                      size_t n);

/* An IPv4/IPv6 socket address as 19 bytes, and back (NOTES_EINVAL for a
 * family byte other than 4 or 6). */
void sync_relay_addr_put(uint8_t out[RELAY_ADDR_LEN], const struct sockaddr *sa);
int sync_relay_addr_get(const uint8_t in[RELAY_ADDR_LEN],
                        struct sockaddr_storage *ss);

/*
 * A reader of relay messages from a byte stream: feed bytes; each complete
 * message is handed out. Bytes past a message the caller says ends the
 * relay phase (PAIRED) stay in the caller's buffer: sync_relay_take returns
 * how many bytes of `in` it consumed.
 */
struct sync_relay_rd {
    uint8_t buf[RELAY_MSG_MAX];
    size_t have;
};
/* 1: a message is complete (*type, *payload, *len valid until the next
 * call), 0: more bytes needed. *used: bytes of in consumed. */
int sync_relay_take(struct sync_relay_rd *rd, const uint8_t *in, size_t n,
                    size_t *used, uint8_t *type, const uint8_t **payload,
                    size_t *len);

/* Tests only (NULL otherwise): called on each chunk the relay forwards,
 * with the pairing's number since start and the chunk's offset in its
 * direction, so that a test can play a hostile relay: it may alter the
 * bytes, and returns 0 (forward them), 1 (drop them) or 2 (drop them and
 * end the pairing). */
extern int (*notes_sync__relay_tamper)(uint8_t *p, size_t n, unsigned pairing,
                                       uint64_t offset);

#endif
