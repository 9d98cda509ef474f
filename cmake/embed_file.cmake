# Embeds one text file into a C++ source as `extern const char NAME[]` (no runtime paths).
# Usage: cmake -DIN=file -DOUT=file.cc -DNAME=kSymbol -DNAMESPACE=assent::server -P embed_file.cmake
file(READ "${IN}" text)
get_filename_component(name "${IN}" NAME)
set(content "// Generated from ${name} by cmake/embed_file.cmake. Do not edit.\n")
string(APPEND content "namespace ${NAMESPACE} {\nextern const char ${NAME}[];\n")
string(APPEND content "const char ${NAME}[] = R\"assent_embed(${text})assent_embed\";\n}  // namespace ${NAMESPACE}\n")
file(WRITE "${OUT}.tmp" "${content}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
