"""asrk2.features"""
