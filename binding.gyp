{
  "targets": [
    {
      "target_name": "simclr_native",
      "sources": ["native/addon.cc", "native/ops.cc", "native/dist.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node native/gyp-config.js include_dirs)"
      ],
      "libraries": ["<!@(node native/gyp-config.js libraries)"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "<!@(node native/gyp-config.js defines)"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["<!@(node native/gyp-config.js std)", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter", "-Wno-deprecated-declarations"]
    }
  ]
}
