"""geth's tracing API (``debug_trace*``) served from the replica's own state.

A block is re-executed on a throwaway overlay from its parent's state (``replay``);
the traced transaction runs on py-evm classes whose opcodes and call frames report
to a tracer (``hooks``). One module per tracer: the struct logger (``structlog``),
``callTracer``/``flatCallTracer`` (``calls``), ``prestateTracer`` (``prestate``),
``4byteTracer`` (``fourbyte``); ``noopTracer`` is the bare ``hooks.Tracer``. The
wire methods and their options live in ``api``.
"""
