# Tests of the HTTP frontend (src/server/http), included from this folder's CMakeLists.txt.
find_package(Boost 1.74 REQUIRED)
find_package(ZLIB REQUIRED)
find_package(Threads REQUIRED)

kiln_add_test(http_codec_test http_codec_test.cc)
target_link_libraries(http_codec_test PRIVATE kiln_http ZLIB::ZLIB)

kiln_add_test(http_frontend_test http_frontend_test.cc)
target_link_libraries(http_frontend_test PRIVATE kiln_http Boost::headers ZLIB::ZLIB
                      Threads::Threads)
