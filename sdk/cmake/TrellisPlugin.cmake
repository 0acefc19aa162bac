# trellis_add_plugin(NAME SOURCES src... [LIBS lib...] [OUTPUT_DIRECTORY dir] [INSTALL_DESTINATION dir]
#                    [INSTALL_COMPONENT name] [NO_INSTALL])
#
# A Trellis plugin: a MODULE library named trellis-NAME.so, built with hidden visibility (only the
# descriptor that TRELLIS_PLUGIN exports is visible), linked with Trellis::sdk. It lands in
# OUTPUT_DIRECTORY (default: TRELLIS_PLUGIN_OUTPUT_DIRECTORY if set, else <build>/plugins) and is
# installed into INSTALL_DESTINATION (default lib/trellis/plugins, under the install prefix)
# unless NO_INSTALL. Load it with [plugins] paths = ["<that folder>"] or $TRELLIS_PLUGIN_PATH.
# Used by Trellis's own plugins and installed with the CMake package for third-party ones.
function(trellis_add_plugin name)
  cmake_parse_arguments(arg "NO_INSTALL" "OUTPUT_DIRECTORY;INSTALL_DESTINATION;INSTALL_COMPONENT" "SOURCES;LIBS" ${ARGN})
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "trellis_add_plugin(${name}): SOURCES is required")
  endif()
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "trellis_add_plugin(${name}): unknown arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_OUTPUT_DIRECTORY)
    if(TRELLIS_PLUGIN_OUTPUT_DIRECTORY)
      set(arg_OUTPUT_DIRECTORY ${TRELLIS_PLUGIN_OUTPUT_DIRECTORY})
    else()
      set(arg_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/plugins)
    endif()
  endif()
  if(NOT arg_INSTALL_DESTINATION)
    set(arg_INSTALL_DESTINATION lib/trellis/plugins)
  endif()
  add_library(${name} MODULE ${arg_SOURCES})
  set_target_properties(${name} PROPERTIES
    PREFIX "" OUTPUT_NAME "trellis-${name}"
    LIBRARY_OUTPUT_DIRECTORY ${arg_OUTPUT_DIRECTORY}
    CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  target_link_libraries(${name} PRIVATE Trellis::sdk ${arg_LIBS})
  if(NOT arg_NO_INSTALL)
    if(arg_INSTALL_COMPONENT)
      install(TARGETS ${name} LIBRARY DESTINATION ${arg_INSTALL_DESTINATION} COMPONENT ${arg_INSTALL_COMPONENT})
    else()
      install(TARGETS ${name} LIBRARY DESTINATION ${arg_INSTALL_DESTINATION})
    endif()
  endif()
endfunction()
