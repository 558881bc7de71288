/* ui_assets.h: the page bundle (web/dist), embedded at build time by
 * cli/ui/embed.cmake into ui_assets.c. */
#ifndef NOTES_UI_ASSETS_H
#define NOTES_UI_ASSETS_H

#include <stddef.h>

struct ui_asset {
    const char *name;          /* file name in web/dist */
    const char *type;          /* Content-Type */
    const unsigned char *data;
    size_t len;
};

/* The asset called `name`, or NULL. */
const struct ui_asset *ui_asset_find(const char *name);

#endif
