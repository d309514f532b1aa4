"""Everything that moves pictures in or out of cbs-obs, in one place.

``sources`` opens what frames come from (camera, file, stream, still image, the demo clip);
``outputs`` is the registry of where finished frames go (virtual camera, MJPEG stream, recording,
preview window); ``video`` and ``images`` read and write files. The engine in between only sees
``Source.read()`` and ``Output.send(frame)``, so a new input or output never touches it.
"""
