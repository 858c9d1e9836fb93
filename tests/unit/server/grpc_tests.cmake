# Tests of the gRPC frontend (src/server/grpc), included from this folder's CMakeLists.txt.
kiln_add_test(grpc_codec_test grpc_codec_test.cc)
target_link_libraries(grpc_codec_test PRIVATE kiln_grpc)
kiln_add_test(grpc_frontend_test grpc_frontend_test.cc)
target_link_libraries(grpc_frontend_test PRIVATE kiln_grpc)
