"""`geovigie jobs worker`: run queued jobs (submitted with POST /jobs) in a process of their own."""
