"""The wire between the trusted judge and the student's sandboxed kernel.

Everything in this package is visible inside the sandbox (it is the only part of the
grader that is): ``framing`` moves length-prefixed messages over a socket, ``peer``
encodes values as data (tensors, numbers, strings, containers; other objects become
handles served by their owner) and keeps proxies and tensor twins in step, ``spies``
records built-in calls during a call, and ``server`` is the kernel's end. Nothing here
unpickles or evaluates what it receives.
"""
