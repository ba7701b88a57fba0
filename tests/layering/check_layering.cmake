# check_layering.cmake: builds one tests/layering target (-DBUILD_DIR, -DTARGET) and checks
# the outcome (-DEXPECT=fail|pass). A failure must be the compiler not finding -DHEADER:
# any other failure (a broken build, say) is no proof of the layering and fails the test.
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(EXPECT STREQUAL "pass")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${TARGET}: ${HEADER} should compile from this layer:\n${out}")
  endif()
  message(STATUS "${TARGET}: ${HEADER} compiles from this layer, as it should")
else()
  if(rc EQUAL 0)
    message(FATAL_ERROR "${TARGET}: ${HEADER} compiled: a lower layer can include a header of "
                        "a higher one (see tests/layering/CMakeLists.txt)")
  endif()
  # gcc: "trainer.h: No such file or directory"; clang: "'trainer.h' file not found"
  string(FIND "${out}" "${HEADER}: No such file" at_gcc)
  string(FIND "${out}" "'${HEADER}' file not found" at_clang)
  if(at_gcc EQUAL -1 AND at_clang EQUAL -1)
    message(FATAL_ERROR "${TARGET}: the build failed, but not for want of ${HEADER}:\n${out}")
  endif()
  message(STATUS "${TARGET}: ${HEADER} is out of this layer's reach, as it should be")
endif()
