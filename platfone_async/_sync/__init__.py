"""The sync facade ``Platfone``: a generated twin of ``AsyncPlatfone`` on a loop thread.

- ``_runtime`` - hand-written: the event loop thread, the bridge to it, Ctrl-C, and the
  adapters that turn coroutines, async iterators and async context managers into
  blocking calls, iterators and context managers;
- ``_facade`` - GENERATED: the twin classes, each method one call into the runtime;
- ``_codegen`` (with ``_introspect`` and ``_naming``) - writes ``_facade`` from the async
  classes: ``python -m platfone_async._sync._codegen [--check]``.

This package imports nothing itself: ``platfone_async`` loads ``_facade`` on first use.
"""
