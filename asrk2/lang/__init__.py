"""asrk2.lang"""
