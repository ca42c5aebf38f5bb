# Standalone build of the FP8 attention check/timing driver (GPU machine): make -f fp8_test.mk -j16
# The library core (status, registry, cpu family), the cuda.cudnn sources (for the BF16 comparison)
# and the FP8 sources; objects under build/fp8/.
NVCC ?= nvcc
ARCH ?= -gencode arch=compute_90a,code=sm_90a
INC = -I../../include -I../../src -I../../cpu
FLAGS = -std=c++17 -O3 $(ARCH) $(INC) -Xcompiler -fopenmp
CXXFLAGS = -std=c++17 -O3 $(INC) -fopenmp
B = build/fp8
CORE = ../../src/status.cpp ../../src/registry.cpp ../../cpu/call_geometry.cpp ../../cpu/cpu_attention.cpp
CUDNN_CPP = ../cudnn_library.cpp ../operation_graph.cpp ../sdpa_graph.cpp ../fp8_sdpa_graph.cpp
CUDNN_CU = ../row_fixup.cu ../cudnn_family.cu ../fp8_attention.cu ../fp8_cast.cu ../fp8_recipe_state.cu
OBJ = $(patsubst ../../%.cpp,$(B)/core/%.o,$(CORE)) $(patsubst ../%.cpp,$(B)/%.o,$(CUDNN_CPP)) \
      $(patsubst ../%.cu,$(B)/%.o,$(CUDNN_CU)) $(B)/fp8_test.o

$(B)/fp8_test: $(OBJ)
	$(NVCC) $(FLAGS) $^ -o $@ -lgomp -ldl
$(B)/core/%.o: ../../%.cpp
	@mkdir -p $(dir $@)
	g++ $(CXXFLAGS) -I$(CUDA_HOME)/include -c $< -o $@
$(B)/%.o: ../%.cpp ../*.h
	@mkdir -p $(B)
	g++ $(CXXFLAGS) -I$(CUDA_HOME)/include -c $< -o $@
$(B)/%.o: ../%.cu ../*.h
	@mkdir -p $(B)
	$(NVCC) $(FLAGS) -c $< -o $@
$(B)/fp8_test.o: fp8_test.cu ../fp8_attention.h ../../cuda/tests/attention_reference.h
	@mkdir -p $(B)
	$(NVCC) $(FLAGS) -c $< -o $@
