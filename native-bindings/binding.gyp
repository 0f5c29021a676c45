# Builds vdmap_native.node: the Node-API addon over liburing (see src/addon.c for the table of contents).
# Run through build.mjs, which checks liburing and passes --nodedir; never through npm's nodedir config.
{
  "targets": [
    {
      "target_name": "vdmap_native",
      "sources": [
        "src/addon.c",
        "src/errors.c",
        "src/device.c",
        "src/memory.c",
        "src/ring.c",
        "src/ring_buffers.c",
        "src/ring_submit.c",
        "src/ring_reap.c",
        "src/ring_wake.c",
        "src/socket.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "libraries": ["-luring"],
      "cflags!": ["-Wno-unused-parameter"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Wshadow", "-Wstrict-prototypes", "-fvisibility=hidden"],
      "configurations": {
        "Release": {
          "cflags!": ["-O3"],
          "cflags": ["-O2"]
        }
      }
    }
  ]
}
