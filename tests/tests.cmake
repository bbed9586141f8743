# Unit tests: tests/unit/<module>_*.c, one Criterion executable each, linked
# against the module library it tests (codec, io or engine). Labels: unit.
# End-to-end tests: tests/e2e/*.sh drive the real ferry binary. Labels: e2e
# (plus needs-root / slow where the script says so on a "# labels:" line;
# on a FERRY_SANITIZE build a slow one with a FERRY_E2E_SHORT variant
# also runs as e2e/<name>_short, labelled short instead of slow).
if(FERRY_TESTS)
  pkg_check_modules(CRITERION REQUIRED IMPORTED_TARGET criterion)
  file(GLOB UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/unit/*.c)
  foreach(src ${UNIT_TESTS})
    get_filename_component(name ${src} NAME_WE)
    string(REGEX MATCH "^[a-z]+" module ${name})
    add_executable(unit_${name} ${src})
    target_link_libraries(unit_${name} PRIVATE fr_${module} PkgConfig::CRITERION)
    if(module STREQUAL "engine")
      target_link_libraries(unit_${name} PRIVATE PkgConfig::SODIUM PkgConfig::INIH)
    endif()
    target_include_directories(unit_${name} PRIVATE ${CMAKE_SOURCE_DIR}/${module})
    # run.sh reports a binary in which any test skipped as Skipped (77)
    add_test(NAME unit/${name}
             COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/unit/run.sh $<TARGET_FILE:unit_${name}>)
    set_tests_properties(unit/${name} PROPERTIES LABELS unit TIMEOUT 300
                         SKIP_RETURN_CODE 77)
  endforeach()
endif()

# An LD_PRELOAD shim, for tests only, that logs the calls deciding
# durability (syncs, journal writes, socket sends): test_durability.sh.
add_library(ferry_synclog MODULE ${CMAKE_CURRENT_LIST_DIR}/shim/synclog.c)
target_link_libraries(ferry_synclog PRIVATE ${CMAKE_DL_LIBS} Threads::Threads)

# Fuzz targets: each corpus replayed by a plain driver (fuzz_replay_<name>),
# and with FERRY_FUZZ the libFuzzer executables fuzz_<name>.
include(${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz.cmake)

add_test(NAME lint/layering COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/layering.sh ${CMAKE_SOURCE_DIR}
         ${CMAKE_BINARY_DIR}/CMakeFiles/fr_engine.dir/engine)
set_tests_properties(lint/layering PROPERTIES LABELS unit)

file(GLOB E2E_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/e2e/test_*.sh)
foreach(script ${E2E_TESTS})
  get_filename_component(name ${script} NAME_WE)
  file(STRINGS ${script} label_line REGEX "^# labels:")
  set(labels e2e)
  if(label_line)
    string(REGEX REPLACE "^# labels:[ ]*" "" extra "${label_line}")
    string(REPLACE " " ";" extra "${extra}")
    list(APPEND labels ${extra})
  endif()
  add_test(NAME e2e/${name} COMMAND bash ${script})
  set_tests_properties(e2e/${name} PROPERTIES LABELS "${labels}" TIMEOUT 900
    SKIP_RETURN_CODE 77
    ENVIRONMENT "FERRY=$<TARGET_FILE:ferry>;FERRY_SRC=${CMAKE_SOURCE_DIR};SYNCLOG_SHIM=$<TARGET_FILE:ferry_synclog>")
  # A slow test with a short variant (it honours FERRY_E2E_SHORT=1): on a
  # sanitizer build, which runs without the slow tests (tools/test.sh),
  # the short variant runs as e2e/<name>_short, not labelled slow.
  file(STRINGS ${script} short_line REGEX "FERRY_E2E_SHORT")
  if(FERRY_SANITIZE AND short_line AND "slow" IN_LIST labels)
    set(short_labels ${labels})
    list(REMOVE_ITEM short_labels slow)
    list(APPEND short_labels short)
    add_test(NAME e2e/${name}_short COMMAND bash ${script})
    set_tests_properties(e2e/${name}_short PROPERTIES LABELS "${short_labels}"
      TIMEOUT 300 SKIP_RETURN_CODE 77
      ENVIRONMENT "FERRY_E2E_SHORT=1;FERRY=$<TARGET_FILE:ferry>;FERRY_SRC=${CMAKE_SOURCE_DIR};SYNCLOG_SHIM=$<TARGET_FILE:ferry_synclog>")
  endif()
endforeach()

# Run with `ctest -j2` (tools/test.sh): a test labelled "alongside" (it
# mostly waits, on a line of 64 kbit/s or for a schedule's next minute)
# runs beside the others; every other test holds the lock "machine", so
# that they still run one at a time, as their timings and rates assume.
get_property(all_tests DIRECTORY PROPERTY TESTS)
foreach(t ${all_tests})
  get_test_property(${t} LABELS t_labels)
  if(NOT "alongside" IN_LIST t_labels)
    set_property(TEST ${t} APPEND PROPERTY RESOURCE_LOCK machine)
  endif()
endforeach()
