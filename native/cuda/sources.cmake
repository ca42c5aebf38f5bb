# CUDA kernel families (H4), included by native/CMakeLists.txt when CUDA is on: the cuda.flash
# instantiations generated from flash/flash_variants.json, its dispatch, and its te_attn family.
file(GLOB TE_CUDA_FLASH_GENERATED CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/flash/generated/*.cu)
target_sources(te_native_core PRIVATE
  ${TE_CUDA_FLASH_GENERATED}
  ${CMAKE_CURRENT_LIST_DIR}/flash/flash_api.cu
  ${CMAKE_CURRENT_LIST_DIR}/family/flash_family.cu)
# The family registers itself from a static initializer; a static library drops objects nothing
# refers to, so consumers are told to keep the one that holds it.
target_link_options(te_native_core INTERFACE "LINKER:--undefined=te_cuda_flash_family_linked")
