#!/usr/bin/env python3
"""Writes tests/data/tb_reference.tfevents with TensorBoard's own writer code (its
RecordWriter and its Event, Summary and text-plugin protocol buffers), so that
tests/test_tb_events.c can check that ddim-dist's reader (io/tfrecord.c, io/tb_events.c)
frames and decodes what TensorBoard writes. Deterministic: fixed wall times, no host name.

    python3 tools/tb_reference.py tests/data/tb_reference.tfevents

Needs the tensorboard package (pip install tensorboard); tensorflow is not needed. The
records, in order (step: what):
    0: file_version "brain.Event:2"              wall_time 1000.0
    3: scalars "a" = 0.5, "b" = 0.0 (one event)   wall_time 1001.0
    5: image "img", 3x2 RGB PNG                   wall_time 1002.0
    5: text "config" = "hello: 1" (text plugin)   wall_time 1003.0
    7: SessionLog START                           wall_time 1004.0
    9: scalar "a" = 1.25                          wall_time 1005.0
"""
import io
import sys

from PIL import Image
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.text import summary_v2 as text_summary
from tensorboard.summary.writer.record_writer import RecordWriter


def png_bytes():
    img = Image.new("RGB", (3, 2))
    img.putdata([(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 20, 30), (40, 50, 60), (70, 80, 90)])
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def events():
    yield event_pb2.Event(wall_time=1000.0, file_version="brain.Event:2")
    scalars = summary_pb2.Summary(
        value=[
            summary_pb2.Summary.Value(tag="a", simple_value=0.5),
            summary_pb2.Summary.Value(tag="b", simple_value=0.0),
        ]
    )
    yield event_pb2.Event(wall_time=1001.0, step=3, summary=scalars)
    image = summary_pb2.Summary.Image(
        height=2, width=3, colorspace=3, encoded_image_string=png_bytes()
    )
    yield event_pb2.Event(
        wall_time=1002.0,
        step=5,
        summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="img", image=image)]),
    )
    yield event_pb2.Event(
        wall_time=1003.0, step=5, summary=text_summary.text_pb("config", "hello: 1")
    )
    start = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
    yield event_pb2.Event(wall_time=1004.0, step=7, session_log=start)
    last = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="a", simple_value=1.25)])
    yield event_pb2.Event(wall_time=1005.0, step=9, summary=last)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: tb_reference.py OUT.tfevents")
    with open(sys.argv[1], "wb") as f:
        writer = RecordWriter(f)
        for ev in events():
            writer.write(ev.SerializeToString())
        writer.flush()


if __name__ == "__main__":
    main()
