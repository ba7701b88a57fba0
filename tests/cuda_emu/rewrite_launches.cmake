# rewrite_launches.cmake: copies a CUDA source into C++ that the host emulation compiles
# (cuda_emu.h). Run as: cmake -DIN=kernels/x.cu -DOUT=build/.../x.cc -P rewrite_launches.cmake
# - k<<<grid, block, shmem, stream>>>(args)  ->  k<< ::emu::launch(grid, block, shmem, stream)(args)
#   (a token substitution: every line stays where it was, and `#line` keeps the .cu file's
#   name for messages and __FILE__);
# - extern __shared__ T name[];  ->  T *const name = (T *)::emu::dynamic_shared();
# - __shared__ T name[A][B];  ->  T (&name)[A][B] = ::emu::shared_var<T[A][B], __COUNTER__>();
#   (one declarator per declaration, on one line)
# The sources themselves are never changed.
file(READ "${IN}" src)
string(REGEX MATCHALL "<<<" opens "${src}")
string(REGEX MATCHALL ">>>" closes "${src}")
list(LENGTH opens n_open)
list(LENGTH closes n_close)
if(NOT n_open EQUAL n_close)
  message(FATAL_ERROR "${IN}: ${n_open} '<<<' but ${n_close} '>>>': cannot rewrite its launches")
endif()
string(REPLACE "<<<" "<< ::emu::launch(" src "${src}")
string(REPLACE ">>>" ")" src "${src}")
# a type: no ; = ( ) { } / or line break (so that no comment or statement is taken for one)
set(type "([^;=(){}/\n]+)")
set(ident "([A-Za-z_][A-Za-z0-9_]*)")
string(REGEX REPLACE "extern[ \t]+__shared__[ \t]+${type}[ \t]+${ident}[ \t]*\\[[ \t]*\\][ \t]*;"
       "\\1 *const \\2 = (\\1 *)::emu::dynamic_shared();" src "${src}")
string(REGEX REPLACE "__shared__[ \t]+${type}[ \t]+${ident}[ \t]*((\\[[^];\n]+\\])*)[ \t]*;"
       "\\1 (&\\2)\\3 = ::emu::shared_var<\\1\\3, __COUNTER__>();" src "${src}")
file(WRITE "${OUT}" "#line 1 \"${IN}\"\n${src}")
