# Fuzz targets (README "Sanitizers and fuzzing"), one per loader of outside input; included
# by tests/CMakeLists.txt, so that their tests get the sanitizer build's settings there.
# fuzz_<loader>.c feeds a file to its loader (fuzz_load); a driver makes the file:
#   fuzz_<loader>       fuzz_raw.c: the input bytes are the file (every loader);
#   fuzz_<loader>_edit  fuzz_h5_edit.c: the input is a list of edits to a valid HDF5 file,
#                       the first seed of corpus/<loader>/ (the HDF5 loaders).
#  - Every build: fuzz_replay_<target> links a target's files with replay_main.c instead of
#    libFuzzer, and the CTest test of the same name (label fuzz) feeds it the seed corpus
#    corpus/<target>/, each of which must load, and the inputs that once crashed it,
#    regressions/<target>/, each of which must be loaded or refused with a message. In the
#    sanitizer build this runs under ASan and UBSan.
#  - DDIM_FUZZ (clang): fuzz_<target> links them with libFuzzer, for run_fuzzers.sh.
set(_fuzz ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
set(_fuzz_seed_dataset synthetic_8px.h5)
set(_fuzz_seed_checkpoint tiny.h5)
set(_fuzz_seed_ema_weights tiny_export.h5)
set(_fuzz_targets config dataset checkpoint ema_weights image dataset_edit checkpoint_edit
                  ema_weights_edit)
if(DDIM_HAVE_TENSORBOARD)
  list(APPEND _fuzz_targets tb_events)
endif()
foreach(target ${_fuzz_targets})
  string(REGEX REPLACE "_edit$" "" loader ${target})
  if(target MATCHES "_edit$")
    set(_sources fuzz/fuzz_${loader}.c fuzz/fuzz_util.c fuzz/fuzz_h5_edit.c)
  else()
    set(_sources fuzz/fuzz_${loader}.c fuzz/fuzz_util.c fuzz/fuzz_raw.c)
  endif()
  set(_programs fuzz_replay_${target})
  ddim_program(fuzz_replay_${target} ${_sources} fuzz/replay_main.c)
  if(DDIM_FUZZ)
    ddim_program(fuzz_${target} ${_sources})
    target_link_options(fuzz_${target} PRIVATE -fsanitize=fuzzer)
    list(APPEND _programs fuzz_${target})
    list(APPEND _fuzzers fuzz_${target})
  endif()
  if(target MATCHES "_edit$")
    foreach(p ${_programs})
      target_compile_definitions(${p} PRIVATE
                                 FUZZ_EDIT_BASE="${_fuzz}/corpus/${loader}/${_fuzz_seed_${loader}}")
    endforeach()
  endif()
  set(_inputs --accept ${_fuzz}/corpus/${target})
  if(IS_DIRECTORY ${_fuzz}/regressions/${target})
    list(APPEND _inputs --any ${_fuzz}/regressions/${target})
  endif()
  add_test(NAME fuzz_replay_${target} COMMAND fuzz_replay_${target} ${_inputs})
  set_tests_properties(fuzz_replay_${target} PROPERTIES LABELS "unit;fuzz" TIMEOUT 300
                       ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE;OMP_NUM_THREADS=1")
endforeach()
if(DDIM_FUZZ)
  add_custom_target(fuzzers DEPENDS ${_fuzzers})
endif()
