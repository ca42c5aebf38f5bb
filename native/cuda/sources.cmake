# CUDA kernel families (H4), included by native/CMakeLists.txt when CUDA is on: cuda.flash (its
# instantiations generated from flash/flash_variants.json, dispatch, te_attn family) and cuda.unfused.
file(GLOB TE_CUDA_FLASH_GENERATED CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/flash/generated/*.cu)
target_sources(te_native_core PRIVATE
  ${TE_CUDA_FLASH_GENERATED}
  ${CMAKE_CURRENT_LIST_DIR}/flash/flash_api.cu
  ${CMAKE_CURRENT_LIST_DIR}/family/flash_family.cu
  ${CMAKE_CURRENT_LIST_DIR}/unfused/unfused_api.cu
  ${CMAKE_CURRENT_LIST_DIR}/family/unfused_family.cu
  ${CMAKE_CURRENT_LIST_DIR}/../cudnn/cudnn_library.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../cudnn/operation_graph.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../cudnn/sdpa_graph.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../cudnn/row_fixup.cu
  ${CMAKE_CURRENT_LIST_DIR}/../cudnn/cudnn_family.cu
  ${CMAKE_CURRENT_LIST_DIR}/../cudnn/fp8_sdpa_graph.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../cudnn/fp8_attention.cu
  ${CMAKE_CURRENT_LIST_DIR}/../cudnn/fp8_cast.cu
  ${CMAKE_CURRENT_LIST_DIR}/../cudnn/fp8_recipe_state.cu)
# cuda.cudnn loads cuDNN with dlopen (native/cudnn/cudnn_library.cpp).
target_link_libraries(te_native_core PUBLIC ${CMAKE_DL_LIBS})
# Each family registers itself from a static initializer; a static library drops objects nothing
# refers to, so consumers are told to keep the ones that hold them.
target_link_options(te_native_core INTERFACE
  "LINKER:--undefined=te_cuda_flash_family_linked"
  "LINKER:--undefined=te_cuda_unfused_family_linked"
  "LINKER:--undefined=te_cuda_cudnn_family_linked"
  # The addon refers to the FP8 entry points weakly (CPU builds have none), and a weak reference does
  # not pull an object out of a static library: these do.
  "LINKER:--undefined=te_cudnn_fp8_forward"
  "LINKER:--undefined=te_fp8_quantize"
  "LINKER:--undefined=te_fp8_state_update")
