/*
 * meeting.c: the one meeting template, shared by `notes new` and the page
 * ("new note"), so both make the same note: the three sections every
 * meeting has, and the title, time and first participant as fields.
 */
#include "fmt_internal.h"

int notes_fmt_meeting_new(notes_doc *d, const char *title, const char *when,
                          const char *participant)
{
    static const char body[] = NOTES_FMT_MEETING_BODY;
    int rc;
    if (!d || !title || !when || !participant) {
        notes__set_detail("meeting: no note, title, time or participant");
        return NOTES_EINVAL;
    }
    /* Only a fresh note: a template imported first keeps its own text. */
    if (notes_doc_length(d) != 0 || notes_doc_fields(d)[0] != NULL) {
        notes__set_detail("meeting: the note is not empty");
        return NOTES_EEXIST;
    }
    /* libnotes sets the detail of a failing call: passed on as it is. */
    if ((rc = notes_doc_splice(d, 0, 0, body, sizeof(body) - 1)) ||
        (rc = notes_doc_set_field(d, "title", title)) ||
        (rc = notes_doc_set_field(d, "datetime", when)) ||
        (rc = notes_doc_list_add(d, "participants", participant)))
        return rc;
    return NOTES_OK;
}
