/* gif_write.h: animated GIFs (giflib) of RGB frames: ddim-sample's trajectory and
 * interpolation, and the evolution of a run's sample grids (ddim-gif). A frame with at most
 * 256 colours is stored exactly; one with more is reduced to 256 by giflib's median-cut
 * quantizer (GifQuantizeBuffer), each frame with its own palette. */
#ifndef DDIM_GIF_WRITE_H
#define DDIM_GIF_WRITE_H

#include <stddef.h>
#include <stdint.h>

struct gif_writer;

/* Starts a GIF to be written at path (replaced if it exists) of frames of width x height
 * pixels shown for delay_cs hundredths of a second each, looping forever. The file is built
 * in memory and written by gif_writer_close only (path.tmp, fsync, rename): until then, and
 * after a failure, path is left as it was. NULL with a message naming the file. */
struct gif_writer *gif_writer_open(const char *path, int width, int height, int delay_cs, char *err,
                                   size_t errlen);

/* Appends one frame: rgb (height, width, 3). 0, or -1 with a message. */
int gif_writer_add(struct gif_writer *g, const uint8_t *rgb, char *err, size_t errlen);

/* With ok, finishes the GIF and writes it to path atomically (a full disk leaves the old
 * file whole); without (an error before), writes nothing. Frees g. 0, or -1 with a message
 * naming the file and the system's cause. */
int gif_writer_close(struct gif_writer *g, int ok, char *err, size_t errlen);

/* The frame as the GIF stores it (what a decoder gives back): rgb itself when it has at most
 * 256 colours, else its quantized colours. out: (height, width, 3). */
void gif_frame_as_stored(const uint8_t *rgb, int width, int height, uint8_t *out);

#endif
