/* relay_wire.c: the relay's message format (relay_wire.h). */
#include <string.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include "relay_wire.h"
#include "sync_internal.h"

#define LBL_TAG "notes-relay/1 tag"

int (*notes_sync__relay_tamper)(uint8_t *p, size_t n, unsigned pairing,
                                uint64_t offset);

void sync_relay_tag(const uint8_t secret[32], uint64_t day,
                    uint8_t tag[RELAY_TAG_LEN])
{
    uint8_t in[sizeof(LBL_TAG) - 1 + 8];
    memcpy(in, LBL_TAG, sizeof(LBL_TAG) - 1);
    for (int i = 0; i < 8; i++)
        in[sizeof(LBL_TAG) - 1 + i] = (uint8_t)(day >> (8 * i));
    notes__hash(tag, RELAY_TAG_LEN, in, sizeof(in), secret, 32);
}

size_t sync_relay_msg(uint8_t *out, uint8_t type, const void *payload, size_t n)
{
    if (n > 255)
        n = 255;
    out[0] = type;
    out[1] = (uint8_t)n;
    if (n)
        memcpy(out + RELAY_HDR_LEN, payload, n);
    return RELAY_HDR_LEN + n;
}

void sync_relay_addr_put(uint8_t out[RELAY_ADDR_LEN], const struct sockaddr *sa)
{
    uint16_t port = 0;
    memset(out, 0, RELAY_ADDR_LEN);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        out[0] = 4;
        memcpy(out + 1, &s4->sin_addr, 4);
        port = ntohs(s4->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        out[0] = 6;
        memcpy(out + 1, &s6->sin6_addr, 16);
        port = ntohs(s6->sin6_port);
    }
    out[17] = (uint8_t)port;
    out[18] = (uint8_t)(port >> 8);
}

int sync_relay_addr_get(const uint8_t in[RELAY_ADDR_LEN],
                        struct sockaddr_storage *ss)
{
    uint16_t port = htons((uint16_t)(in[17] | in[18] << 8));
    memset(ss, 0, sizeof(*ss));
    /* The mirror of sync_relay_addr_put: only the family's part differs. */
    if (in[0] == 4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        *s4 = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = port};
        memcpy(&s4->sin_addr, in + 1, 4);
    } else if (in[0] == 6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        *s6 = (struct sockaddr_in6){.sin6_family = AF_INET6, .sin6_port = port};
        memcpy(&s6->sin6_addr, in + 1, 16);
    } else {
        return NOTES_EINVAL;
    }
    return NOTES_OK;
}

int sync_relay_take(struct sync_relay_rd *rd, const uint8_t *in, size_t n,
                    size_t *used, uint8_t *type, const uint8_t **payload,
                    size_t *len)
{
    size_t u = 0;
    /* A message was handed out last time: start the next one. */
    if (rd->have >= RELAY_HDR_LEN && rd->have == (size_t)RELAY_HDR_LEN + rd->buf[1])
        rd->have = 0;
    while (u < n) {
        size_t want = rd->have < RELAY_HDR_LEN ? RELAY_HDR_LEN - rd->have
                      : (size_t)RELAY_HDR_LEN + rd->buf[1] - rd->have;
        size_t k = n - u < want ? n - u : want;
        memcpy(rd->buf + rd->have, in + u, k);
        rd->have += k;
        u += k;
        if (rd->have >= RELAY_HDR_LEN &&
            rd->have == (size_t)RELAY_HDR_LEN + rd->buf[1])
            break;
    }
    *used = u;
    if (rd->have < RELAY_HDR_LEN || rd->have != (size_t)RELAY_HDR_LEN + rd->buf[1])
        return 0;
    *type = rd->buf[0];
    *payload = rd->buf + RELAY_HDR_LEN;
    *len = rd->buf[1];
    return 1;
}
