{
  "targets": [{
    "target_name": "epochfs_sys",
    "sources": ["sys.c"],
    "cflags": ["-O2", "-Wall"],
    "defines": ["_FILE_OFFSET_BITS=64", "_GNU_SOURCE"]
  }]
}
