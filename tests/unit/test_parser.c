#include "test.h"
TEST(placeholder){}
TEST_MAIN
