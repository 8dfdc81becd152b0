"""The stage framework every stage builds on: config base and loading, atomic writes,
manifests, resume, the shard runner, parallel maps, executors (local, Ray) and devices."""
