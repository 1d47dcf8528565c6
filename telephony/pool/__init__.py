"""The engine pool: a supervisor (supervisor.EnginePool) that takes work for N engine processes
(host.EngineHost) and hands it to them over pipes (wire), each process writing its call events on
a thread of its own (event_writer). It knows nothing of campaigns: the work comes from, and the
events go to, a WorkSource (work.py) that the caller supplies."""
