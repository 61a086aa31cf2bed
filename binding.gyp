{
  "variables": {
    "aio_werror%": "false",
    "aio_sanitize%": "false"
  },
  "targets": [
    {
      "target_name": "posix_aio",
      "sources": [
        "native/addon.cc",
        "native/aiocb.cc",
        "native/engine.cc",
        "native/lio.cc",
        "native/memory.cc",
        "native/nowait.cc",
        "native/request.cc",
        "native/signals.cc",
        "native/wake.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-fvisibility=hidden", "-Wall", "-Wextra"],
      "libraries": ["-lrt", "-lpthread"],
      "ldflags": ["-Wl,-z,nodelete"],
      "conditions": [
        ["aio_werror=='true'", { "cflags_cc": ["-Werror"] }],
        ["aio_sanitize=='true'", {
          "cflags_cc": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-O1", "-g", "-DPOSIX_AIO_DEBUG"],
          "ldflags": ["-fsanitize=address,undefined"]
        }]
      ]
    }
  ]
}
