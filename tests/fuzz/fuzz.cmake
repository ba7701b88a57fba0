# Fuzz targets (README "Sanitizers and fuzzing"), one per loader of outside input; included
# by tests/CMakeLists.txt, so that their tests get the sanitizer build's settings there.
# Each fuzz_<name>.c defines LLVMFuzzerTestOneInput.
#  - Every build: fuzz_replay_<name> links it with replay_main.c, and the CTest test of the
#    same name (label fuzz) feeds it the seed corpus corpus/<name>/, each of which must
#    load, and the inputs that once crashed it, regressions/<name>/, each of which must be
#    loaded or refused with a message. In the
#    sanitizer build this runs under ASan and UBSan.
#  - DDIM_FUZZ (clang): fuzz_<name> links it with libFuzzer, for tests/fuzz/run_fuzzers.sh.
set(DDIM_FUZZ_TARGETS config dataset checkpoint ema_weights image)
foreach(name ${DDIM_FUZZ_TARGETS})
  ddim_program(fuzz_replay_${name} fuzz/fuzz_${name}.c fuzz/fuzz_util.c fuzz/replay_main.c)
  set(_inputs --accept ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${name})
  if(IS_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/regressions/${name})
    list(APPEND _inputs --any ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/regressions/${name})
  endif()
  add_test(NAME fuzz_replay_${name} COMMAND fuzz_replay_${name} ${_inputs})
  set_tests_properties(fuzz_replay_${name} PROPERTIES LABELS "unit;fuzz" TIMEOUT 300
                       ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE;OMP_NUM_THREADS=1")
  if(DDIM_FUZZ)
    ddim_program(fuzz_${name} fuzz/fuzz_${name}.c fuzz/fuzz_util.c)
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
    list(APPEND _fuzzers fuzz_${name})
  endif()
endforeach()
if(DDIM_FUZZ)
  add_custom_target(fuzzers DEPENDS ${_fuzzers})
endif()
