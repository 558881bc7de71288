/* assets.h: the page bundle (web/dist), embedded at build time by
 * web/server/embed.cmake into assets.c. */
#ifndef NOTES_WEB_ASSETS_H
#define NOTES_WEB_ASSETS_H

#include <stddef.h>

struct notes_web__asset {
    const char *name;          /* file name in web/dist */
    const char *type;          /* Content-Type */
    const unsigned char *data;
    size_t len;
    const char *etag;          /* "…": the start of the file's SHA-256 */
};

/* The asset called `name`, or NULL. */
const struct notes_web__asset *notes_web__asset_find(const char *name);

#endif
