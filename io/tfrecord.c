/* tfrecord.c: see tfrecord.h. */
#define _POSIX_C_SOURCE 200809L
#include "tfrecord.h"
#include "util.h"

#include <isa-l/crc.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>

uint32_t tfrecord_crc32c(const void *data, size_t n)
{
    /* ISA-L's crc32_iscsi neither inverts its start value nor its result: the standard
     * CRC-32C starts from ~0 and inverts at the end. It takes an int length. */
    unsigned int crc = 0xffffffffu;
    const unsigned char *p = data;
    while (n > 0) {
        int chunk = n > (size_t)INT_MAX ? INT_MAX : (int)n;
        crc = crc32_iscsi((unsigned char *)p, chunk, crc);
        p += chunk;
        n -= (size_t)chunk;
    }
    return ~crc;
}

uint32_t tfrecord_masked_crc(const void *data, size_t n)
{
    uint32_t crc = tfrecord_crc32c(data, n);
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

size_t tfrecord_frame(uint8_t *record, size_t n)
{
    put_le(record, n, 8);
    put_le(record + 8, tfrecord_masked_crc(record, 8), 4);
    put_le(record + TFRECORD_HEADER + n, tfrecord_masked_crc(record + TFRECORD_HEADER, n), 4);
    return n + TFRECORD_HEADER + TFRECORD_FOOTER;
}

enum tfrecord_status tfrecord_read(FILE *f, uint8_t **buf, size_t *cap, size_t *n)
{
    uint8_t header[TFRECORD_HEADER], footer[TFRECORD_FOOTER];
    size_t got = fread(header, 1, sizeof header, f);
    if (got == 0)
        return TFRECORD_END;
    if (got < sizeof header)
        return TFRECORD_CUT;
    if (get_le(header + 8, 4) != tfrecord_masked_crc(header, 8))
        return TFRECORD_CORRUPT;
    uint64_t length = get_le(header, 8);
    struct stat st;
    off_t at = ftello(f);
    if (at < 0 || fstat(fileno(f), &st) != 0 || st.st_size < at ||
        length > (uint64_t)(st.st_size - at))
        return TFRECORD_CUT;
    if (length + 1 > *cap) {
        free(*buf);
        *cap = (size_t)length + 1;
        *buf = util_xmalloc(*cap);
    }
    if (fread(*buf, 1, (size_t)length, f) != length || fread(footer, 1, sizeof footer, f) != 4)
        return TFRECORD_CUT;
    if (get_le(footer, 4) != tfrecord_masked_crc(*buf, (size_t)length))
        return TFRECORD_CORRUPT;
    *n = (size_t)length;
    return TFRECORD_OK;
}
