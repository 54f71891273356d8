# Every third-party dependency comes from Debian (deploy/packages.txt) through pkg-config
# imported targets. RocksDB is linked as the shared library.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

pkg_check_modules(GRPC REQUIRED IMPORTED_TARGET grpc gpr)
pkg_check_modules(PROTOBUFC REQUIRED IMPORTED_TARGET libprotobuf-c)
pkg_check_modules(ROCKSDB REQUIRED IMPORTED_TARGET rocksdb)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
pkg_check_modules(CRYPTO REQUIRED IMPORTED_TARGET libcrypto)
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
pkg_check_modules(CUNIT REQUIRED IMPORTED_TARGET cunit)
# Test-only: the fake provider's HTTP/2 + TLS front and its gzip-encoded answers.
pkg_check_modules(NGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2)
pkg_check_modules(SSL REQUIRED IMPORTED_TARGET libssl)
pkg_check_modules(ZLIB REQUIRED IMPORTED_TARGET zlib)

find_program(PROTOC protoc REQUIRED)
find_program(PROTOC_GEN_C protoc-gen-c REQUIRED)

# Where Debian ships the .proto files we compile but do not own.
set(SLUICE_PROTOBUF_INCLUDE /usr/include)
set(SLUICE_GRPC_PROTO_INCLUDE /usr/share/grpc-proto)
foreach(f google/protobuf/wrappers.proto google/protobuf/descriptor.proto
          google/protobuf/compiler/plugin.proto)
  if(NOT EXISTS ${SLUICE_PROTOBUF_INCLUDE}/${f})
    message(FATAL_ERROR "${SLUICE_PROTOBUF_INCLUDE}/${f} missing: install deploy/packages.txt")
  endif()
endforeach()
if(NOT EXISTS ${SLUICE_GRPC_PROTO_INCLUDE}/grpc/health/v1/health.proto)
  message(FATAL_ERROR "grpc health.proto missing: install grpc-proto (deploy/packages.txt)")
endif()
