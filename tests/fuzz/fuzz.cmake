# Fuzz targets: tests/fuzz/fuzz_<name>.c defines LLVMFuzzerTestOneInput,
# its seeds are tests/fuzz/corpus/<name>/ (tests/fuzz/README.md). A new
# target is its source file and one line in this list.
set(FERRY_FUZZ_TARGETS
  frame        # frame header: fr_frame_unpack_wire / fr_frame_pack
  manifest     # fr_manifest_decode, round trip through fr_manifest_encode
  offer_z      # fr_offer_z_unpack, then fr_manifest_decode
  have         # fr_have_parse
  held         # fr_held_parse (HELD, after a partial HAVE)
  ack          # the receiver's messages to a sender: fr_ack_parse
  segment      # SEGMENT / SEGMENT_CONT / PIECE / FIN as serve.c takes them
  vol_hdr      # parcel volume header, round trip
  rec_hdr      # parcel record header, round trip
  vol_trailer  # parcel volume trailer, round trip
  journal      # journal replay: fr_journal_open on the bytes
  config       # config file: fr_config_load on the bytes
  handshake    # HELLO/AUTH at the receiver, CHALLENGE/WELCOME at the sender
  sealed       # every message after the handshake: fr_msg_recv, opened
  parcel_record # a parcel volume's sealed record: fr_pseal_open
  parcel_msg   # PARCEL, PARCEL_QUERY, PARCEL_WITHDRAW at the receiver
)

foreach(name ${FERRY_FUZZ_TARGETS})
  set(src ${CMAKE_CURRENT_LIST_DIR}/fuzz_${name}.c)
  # CI: every corpus replayed through the plain driver, in every build
  add_executable(fuzz_replay_${name} ${CMAKE_CURRENT_LIST_DIR}/replay.c ${src})
  target_link_libraries(fuzz_replay_${name} PRIVATE fr_engine PkgConfig::SODIUM
                        PkgConfig::INIH)
  target_include_directories(fuzz_replay_${name} PRIVATE ${CMAKE_SOURCE_DIR}/engine
                             ${CMAKE_SOURCE_DIR}/codec)
  add_test(NAME fuzz_replay_${name}
           COMMAND fuzz_replay_${name} ${CMAKE_CURRENT_LIST_DIR}/corpus/${name})
  set_tests_properties(fuzz_replay_${name} PROPERTIES LABELS "unit;fuzz"
                       TIMEOUT 120)
  if(FERRY_FUZZ)
    add_executable(fuzz_${name} ${src})
    target_link_libraries(fuzz_${name} PRIVATE fr_engine PkgConfig::SODIUM
                          PkgConfig::INIH)
    target_include_directories(fuzz_${name} PRIVATE ${CMAKE_SOURCE_DIR}/engine
                               ${CMAKE_SOURCE_DIR}/codec)
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  endif()
endforeach()

# The seed generator (tests/fuzz/README.md): real encodings of every format.
add_executable(fuzz_mkcorpus ${CMAKE_CURRENT_LIST_DIR}/mkcorpus.c)
target_link_libraries(fuzz_mkcorpus PRIVATE fr_engine PkgConfig::SODIUM PkgConfig::INIH)
target_include_directories(fuzz_mkcorpus PRIVATE ${CMAKE_SOURCE_DIR}/engine
                           ${CMAKE_SOURCE_DIR}/codec)
