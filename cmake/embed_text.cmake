# Turns a text file into a C++ source defining `const char NAME[]` in
# namespace NAMESPACE, so a page ships inside the binary (nothing to install
# beside it, nothing fetched at run time).
# cmake -DINPUT=f.html -DOUTPUT=f.cc -DNAME=kPage -DNAMESPACE=a::b -P embed_text.cmake
file(READ ${INPUT} text)
string(FIND "${text}" ")embedded_text\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} holds the raw string's delimiter")
endif()
file(WRITE ${OUTPUT} "// Generated from ${INPUT} by cmake/embed_text.cmake; do not edit.\n"
  "namespace ${NAMESPACE} {\nextern const char ${NAME}[];\n"
  "const char ${NAME}[] = R\"embedded_text(${text})embedded_text\";\n}\n")
